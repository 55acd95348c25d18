"""Where webhooks may go: http(s) URLs whose every address is public.

A client picks the URL, so without these rules a webhook is a way to make the server call into its
own network (cloud metadata at 169.254.169.254, databases on 10.x, admin ports on loopback). The
host is resolved and every address checked at registration, and again before each attempt, which
then connects to exactly the addresses that passed: a name that resolves to a public address at
first and to a private one later (DNS rebinding) is caught at the attempt.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from fieldcheck.i18n import Text, _, text

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2000
# IPv6 addresses that carry an IPv4 address (NAT64, RFC 6052): that one must be public too.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """Webhooks may not go to this URL; `code` says why (stable, for problem details).

    `text` is the reason for the client, in its language; the exception's own message is its English.
    """

    def __init__(self, message: Text, *, code: str) -> None:
        super().__init__(message.english)
        self.text = message
        self.code = code


@dataclass(frozen=True)
class Target:
    """A URL and the addresses its host resolved to, all checked: connect to these, not the name."""

    url: str
    scheme: str
    host: str
    port: int
    netloc: str
    addresses: tuple[IPAddress, ...]


def parse_url(url: str) -> SplitResult:
    """The URL's parts, when it is an absolute http(s) URL without credentials."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(
            text(_("the URL may be at most {limit} characters"), limit=MAX_URL_LENGTH),
            code="invalid_webhook_url",
        )
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise TargetRefused(
            text(_("the URL may not contain spaces or control characters")), code="invalid_webhook_url"
        )
    try:
        parts = urlsplit(url)
        _port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise TargetRefused(
            text(_("not a valid URL: {error}"), error=str(exc)), code="invalid_webhook_url"
        ) from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise TargetRefused(
            text(_("the URL must start with https:// or http://")), code="invalid_webhook_url"
        )
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(
            text(
                _(
                    "the URL may not contain a user name or password; authenticate deliveries by their signature"
                )
            ),
            code="invalid_webhook_url",
        )
    if not parts.hostname:
        raise TargetRefused(text(_("the URL has no host name")), code="invalid_webhook_url")
    if parts.fragment:
        raise TargetRefused(text(_("the URL may not contain a fragment (#...)")), code="invalid_webhook_url")
    return parts


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet: not private, loopback, link-local, multicast,
    reserved, unspecified or shared (carrier-grade NAT), nor an IPv6 form of such an address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address the host name resolves to (an address literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(
            text(_("the host name {host} does not resolve ({error})"), host=repr(host), error=str(exc)),
            code="unresolvable_webhook_host",
        ) from None
    addresses: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        # Scope ids (fe80::1%eth0) are dropped: such addresses are link-local and refused anyway.
        addresses[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    if not addresses:
        raise TargetRefused(
            text(_("the host name {host} has no address"), host=repr(host)), code="unresolvable_webhook_host"
        )
    return tuple(addresses)


def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Check the URL, resolve its host and check every address (unless private ones are allowed)."""
    parts = parse_url(url)
    scheme = parts.scheme.lower()
    host = str(parts.hostname)
    port = parts.port or DEFAULT_PORTS[scheme]
    addresses = resolve(host, port)
    if not allow_private:
        refused = [str(a) for a in addresses if not is_public(a)]
        if refused:
            raise TargetRefused(
                text(
                    _(
                        "the host {host} points at {addresses}: webhooks go to public internet addresses "
                        "only, never to private, loopback, link-local, multicast or reserved ones"
                    ),
                    host=host,
                    addresses=", ".join(refused),
                ),
                code="private_webhook_target",
            )
    return Target(url=url, scheme=scheme, host=host, port=port, netloc=parts.netloc, addresses=addresses)
