"""The nearby benchmark's hand-written HTTP/1.1 client reads whole responses, however they come."""

from __future__ import annotations

import socket
import threading

import pytest

from fieldcheck.tools.bench.nearby import _IdleClosed, _read_response


def served(*chunks: bytes, close: bool = False) -> socket.socket:
    ours, theirs = socket.socketpair()

    def send() -> None:
        for chunk in chunks:
            theirs.sendall(chunk)
        if close:
            theirs.close()

    threading.Thread(target=send, daemon=True).start()
    return ours


def test_a_response_in_pieces_is_read_whole() -> None:
    body = b'{"items": []}' * 1000
    response = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    connection = served(response[:10], response[10:40], response[40:5000], response[5000:], close=True)
    assert _read_response(connection) == 200
    assert connection.recv(1) == b""  # nothing of it left behind


def test_a_connection_closed_while_idle_says_so() -> None:
    with pytest.raises(_IdleClosed):
        _read_response(served(close=True))


def test_a_cut_response_or_one_without_length_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="middle"):
        _read_response(served(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", close=True))
    with pytest.raises(RuntimeError, match="without Content-Length"):
        _read_response(served(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", close=True))
