"""TCP proxies the fleet benchmark puts between processes and what they talk to.

One asyncio loop in a thread runs them all. A proxy forwards each connection to a target (in turn,
when it has several: the API processes' round robin, skipping one that refuses connections); `cut`
drops every open connection and refuses new ones for a while, as a network that fails does,
without touching the service behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass
class Proxy:
    name: str
    targets: list[tuple[str, int]]
    loop: asyncio.AbstractEventLoop
    port: int = 0
    cut_until: float = 0.0
    connections: int = 0
    refused: int = 0  # connections closed at once (cut, or no target answered)
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _server: asyncio.base_events.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self.cut_until:
            self.refused += 1
            writer.close()
            return
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        first = next(self._turn)
        for attempt in range(len(self.targets)):
            host, port = self.targets[(first + attempt) % len(self.targets)]
            try:
                upstream = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
                break
            except (OSError, TimeoutError):
                continue
        if upstream is None:
            self.refused += 1
            writer.close()
            return
        target_reader, target_writer = upstream
        if time.monotonic() < self.cut_until:  # cut while connecting
            self.refused += 1
            for end in (writer, target_writer):
                end.close()
            return
        self.connections += 1
        self._open.update((writer, target_writer))
        try:
            await asyncio.gather(self._pipe(reader, target_writer), self._pipe(target_reader, writer))
        finally:
            for end in (writer, target_writer):
                self._open.discard(end)
                end.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()

    def _drop_all(self) -> None:
        for writer in list(self._open):
            transport = writer.transport
            transport.abort()  # a reset, as when a network path dies
        self._open.clear()

    def cut(self, seconds: float) -> None:
        """Drop every connection now and refuse new ones for `seconds`."""
        self.cut_until = time.monotonic() + seconds
        self.loop.call_soon_threadsafe(self._drop_all)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._drop_all()


class Proxies:
    """The event loop (in its own thread) of every proxy of a run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fleet-proxies", daemon=True)
        self.thread.start()
        self.proxies: list[Proxy] = []

    def add(self, name: str, targets: list[tuple[str, int]]) -> Proxy:
        proxy = Proxy(name, targets, self.loop)
        asyncio.run_coroutine_threadsafe(proxy.start(), self.loop).result(timeout=10)
        self.proxies.append(proxy)
        return proxy

    def close(self) -> None:
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(proxy.close(), self.loop).result(timeout=10)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


async def _cancel_the_rest() -> None:
    """Every connection still being forwarded ends (the loop is about to stop)."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
