"""The client's address and scheme behind trusted reverse proxies (FIELDCHECK_TRUSTED_PROXIES).

A load balancer connects on behalf of every phone, so the peer address of the TCP connection is
its own. When, and only when, that peer is a trusted proxy, the client is read from
X-Forwarded-For: walking it from the right (each proxy appends the address it received from), the
first address that is not a trusted proxy is the client. Everything to the left of it was written
by the client itself and may be forged, so it is never used. A header sent by anyone else changes
nothing. Sign-in throttling and sign-up limits count per this address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.7:51000
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(peer: str | None, forwarded_for: Sequence[str], networks: Sequence[Network]) -> str | None:
    """The client's address: the peer's, or the right-most hop of X-Forwarded-For not a trusted proxy."""
    peer_address = _address(peer) if peer else None
    if not forwarded_for or not _trusted(peer_address, networks):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = str(peer_address)
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # Not an address (`unknown`, an obfuscated name): the client cannot be known past the
            # proxy that wrote it, which stays the answer.
            return client
        client = str(address)
        if not _trusted(address, networks):
            return client
    return client  # every hop is a trusted proxy: the left-most is as far as we can see


def trusted_proxies_middleware(networks: Sequence[Network]) -> Callable[[ASGIApp], ASGIApp]:
    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket") and networks:
                forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
                protos = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-proto"]
                peer = scope.get("client")
                if peer is not None and (forwarded or protos) and _trusted(_address(peer[0]), networks):
                    host = client_address(peer[0], forwarded, networks) or peer[0]
                    scope["client"] = (host, peer[1] if host == peer[0] else 0)
                    proto = protos[-1].split(",")[-1].strip().lower() if protos else ""
                    if proto in ("http", "https"):
                        websocket = scope["type"] == ScopeType.WEBSOCKET
                        scope["scheme"] = WEBSOCKET_SCHEMES[proto] if websocket else proto
            await app(scope, receive, send)

        return middleware

    return factory
