"""The client's address, behind the reverse proxies named in `trusted_proxies`.

A request's TCP peer is its client, unless the peer is a trusted proxy. Then the client is the
nearest address in `X-Forwarded-For` that is not itself a trusted proxy, read from the right:
each proxy appends the address that connected to it, and whatever stands further left was
written by the client and is never believed. With no proxy configured (the default) the header
is ignored, so nobody can choose the address that the per-address sign-in limit, the audit log
and `metrics_allow` see. `idp serve` turns uvicorn's own reading of the header off: this
middleware is the only one, whatever server runs the app.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def address(value: str) -> str | None:
    """The IP address in `value` (`1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`), normalised; None
    when it holds none (`unknown`, an obfuscated name, garbage)."""
    text = value.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class Networks:
    """Addresses and networks (`10.0.0.0/8`, `192.0.2.1`): does one of them hold an address?"""

    def __init__(self, values: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(value.strip(), strict=False) for value in values
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        found = address(host) if isinstance(host, str) else None
        if found is None:
            return False
        ip = ipaddress.ip_address(found)
        return any(ip in network for network in self.networks)


def client_address(peer: str, forwarded_for: str, trusted: Networks) -> str:
    """Who sent a request that `peer` passed on with this `X-Forwarded-For`."""
    client = peer
    for hop in reversed(forwarded_for.split(",")):
        if client not in trusted:
            break
        found = address(hop)
        if found is None:
            break
        client = found
    return client


class TrustedProxiesMiddleware:
    """Sets the request's client to the address its trusted proxies forwarded (see above)."""

    def __init__(self, app: ASGIApp, *, trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted = Networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and self.trusted and peer:
            hops = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
            if hops and peer[0] in self.trusted:
                forwarded = b",".join(hops).decode("latin-1")
                scope["client"] = (client_address(peer[0], forwarded, self.trusted), 0)
        await self.app(scope, receive, send)
