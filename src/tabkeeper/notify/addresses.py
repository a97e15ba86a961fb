"""Where a webhook may go (OPS-4, ACL-3): only to public addresses.

A webhook URL's host is resolved (a name through DNS, and numeric forms such as
`2130706433` or `127.1` the way the network library reads them) and every address it
resolves to must be public: loopback (127.0.0.0/8, ::1), private (10/8, 172.16/12,
192.168/16, fc00::/7), link-local (169.254/16, fe80::/10), unspecified (0.0.0.0, ::),
shared, reserved, multicast and documentation ranges are refused, IPv4-mapped IPv6
addresses (::ffff:127.0.0.1) by the IPv4 address they carry. The check runs when an
endpoint is made and again before each delivery (a name may resolve elsewhere later), so
signed posts never reach the server's own network and the delivery record never shows an
answer from inside it.

`TABKEEPER_WEBHOOK_ALLOWED_HOSTS` (settings.py) names hosts that are allowed whatever
they resolve to, for local testing (`127.0.0.1,localhost`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from tabkeeper.domain.errors import InvalidInput

Resolver = Callable[[str], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(InvalidInput):
    """The URL's host is, or resolves to, an address that is not public."""

    code = "webhook_address_refused"


class Unresolved(InvalidInput):
    """The URL's host does not resolve (now)."""

    code = "webhook_host_unresolved"


def resolve(host: str) -> list[str]:
    """Every address `host` resolves to (IP literals and numeric forms included)."""
    try:
        found: list[Any] = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as error:
        raise Unresolved(f"url: the host {host!r} does not resolve") from error
    return [str(info[4][0]) for info in found]


def is_public(text: str) -> bool:
    """Whether an address is a public unicast one (a mapped IPv4 by its IPv4)."""
    try:
        address: IPAddress = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def host_of(url: str) -> str:
    host = urlsplit(url).hostname
    if not host:
        raise InvalidInput("url: has no host", code="invalid_url")
    return host.rstrip(".").lower()


def check_destination(
    url: str, allowed_hosts: Collection[str] = (), resolver: Resolver = resolve
) -> None:
    """Refuse `url` (AddressRefused) unless its host is allowed by name or every address
    it resolves to is public; Unresolved when it resolves to nothing."""
    host = host_of(url)
    if host in allowed_hosts:
        return
    addresses = resolver(host)
    if not addresses:
        raise Unresolved(f"url: the host {host!r} does not resolve")
    if not all(is_public(address) for address in addresses):
        raise AddressRefused(
            f"url: {host!r} is not a public address (loopback, private, link-local and "
            "unspecified addresses are refused); TABKEEPER_WEBHOOK_ALLOWED_HOSTS allows "
            "named hosts for local testing"
        )
