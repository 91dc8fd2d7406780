"""The provider's outbound HTTP: every call to an address an e-service gave.

An e-service's `jwks_uri` and `sector_identifier_uri` are fetched, and its back-channel logout
URI is called, only through `call` (or `fetch_json`), which holds these rules (R-AD-04: no
server-side request forgery; docs/security.md, "Outbound calls"):

- http(s) only, and plain http only where private addresses are allowed (development);
- the host is resolved once, and every address it resolves to must be public: not loopback,
  private, link-local, shared, multicast, reserved or unspecified, nor an IPv6 address that
  embeds such an IPv4 address (IPv4-mapped or -compatible, NAT64, 6to4, Teredo) — unless
  `client_fetch_private_addresses`;
- the connection goes to an address that was checked, so a second DNS answer cannot move it
  elsewhere; the Host header, the TLS server name and the certificate check are still the
  host's;
- no redirect is followed and no proxy is taken from the environment;
- one deadline covers the whole exchange (resolving, connecting, TLS, the answer), and the
  body read is bounded;
- a refusal says that the URL cannot be used, never what its host resolves to.

Calls are coroutines: they run in the event loop, so a slow host holds no request thread, and
callers make them outside any database transaction.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from idp.config import Settings
from idp.i18n import N_, N_n
from idp.reasons import Reason

MAX_DOCUMENT_BYTES = 64 * 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: a translator of the network
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d


class FetchError(Reason):
    """The call failed, or its answer is not what was expected (a translatable reason)."""


class Refused(FetchError):
    """The URL may not be called at all: its scheme, or the addresses of its host."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64 or address in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def is_public(address: Address) -> bool:
    """Whether `address` may be called in production: a global unicast address, and every
    IPv4 address it embeds is one too."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


def _unusable(url: str, kind: type[FetchError] = Refused) -> FetchError:
    """The one reason given for an address that may not be called and for a name that does
    not resolve alike: it tells nothing about the name."""
    return kind(N_("%(url)s cannot be used"), url=url)


def _target(url: str, settings: Settings) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _unusable(url) from None
    if target.scheme not in ("https", "http") or not target.host:
        raise Refused(N_("only http(s) URLs are called"))
    if target.scheme == "http" and not settings.client_fetch_private_addresses:
        raise Refused(N_("plain http URLs are not called"))
    return target


async def _addresses(url: str, target: httpx.URL, settings: Settings) -> list[Address]:
    """The addresses of the target's host (resolved here, once), all of them allowed."""
    try:
        found: list[Address] = [ipaddress.ip_address(target.host)]
    except ValueError:
        try:
            port = target.port or (443 if target.scheme == "https" else 80)
            infos = await anyio.getaddrinfo(target.host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise _unusable(url, FetchError) from None  # perhaps for now only: not Refused
        found = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]
    addresses = list(dict.fromkeys(found))
    if not addresses:
        raise _unusable(url, FetchError)
    if not settings.client_fetch_private_addresses and not all(map(is_public, addresses)):
        raise _unusable(url)
    return addresses


async def _exchange(
    method: str,
    target: httpx.URL,
    address: Address,
    *,
    form: Mapping[str, str] | None,
    headers: Mapping[str, str],
    max_bytes: int,
    deadline: float,
    url: str,
) -> Answer:
    """One request to `address`, speaking to it as to the target's host."""
    pinned = target.copy_with(host=str(address))
    extensions: dict[str, Any] = {}
    if target.scheme == "https" and pinned.host != target.host:
        extensions["sni_hostname"] = target.host  # and the certificate is checked for it
    async with (
        httpx.AsyncClient(
            verify=ssl.create_default_context(),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(deadline),  # and the deadline covers the whole exchange
        ) as http,
        http.stream(
            method,
            pinned,
            data=form,
            headers={**headers, "Host": target.netloc.decode("ascii")},
            extensions=extensions,
        ) as response,
    ):
        body = bytearray()
        if max_bytes:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(url, max_bytes)
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise _too_large(url, max_bytes)
        return Answer(response.status_code, bytes(body))


def _too_large(url: str, limit: int) -> FetchError:
    return FetchError(
        N_n(
            "%(url)s is larger than %(limit)s byte",
            "%(url)s is larger than %(limit)s bytes",
            "limit",
        ),
        url=url,
        limit=limit,
    )


async def call(
    method: str,
    url: str,
    settings: Settings,
    *,
    deadline: float,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> Answer:
    """Send one request to `url` under the rules above, all of it within `deadline` seconds.
    Reads at most `max_bytes` of the answer (0: none). Raises `Refused` for a URL that may
    not be called and `FetchError` for one that could not be reached in time."""
    target = _target(url, settings)
    try:
        with anyio.fail_after(deadline):
            addresses = await _addresses(url, target, settings)
            for attempt, address in enumerate(addresses, start=1):
                try:
                    return await _exchange(
                        method,
                        target,
                        address,
                        form=form,
                        headers=headers or {},
                        max_bytes=max_bytes,
                        deadline=deadline,
                        url=url,
                    )
                except httpx.ConnectError:
                    if attempt == len(addresses):
                        raise
    except TimeoutError:
        raise FetchError(
            N_n(
                "%(url)s did not answer within %(seconds)s second",
                "%(url)s did not answer within %(seconds)s seconds",
                "seconds",
            ),
            url=url,
            seconds=f"{deadline:g}",
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL, ssl.SSLError, OSError) as exc:
        raise FetchError(N_("%(url)s could not be fetched"), url=url) from exc
    raise FetchError(N_("%(url)s could not be fetched"), url=url)  # no address: not reached


async def fetch_json(url: str, settings: Settings) -> Any:
    """GET `url` and parse it as JSON, within `client_fetch_timeout` and 64 KB."""
    answer = await call(
        "GET",
        url,
        settings,
        deadline=settings.client_fetch_timeout,
        headers={"Accept": "application/json"},
    )
    if answer.status != 200:
        raise FetchError(N_("%(url)s answered %(status)s"), url=url, status=answer.status)
    try:
        return json.loads(answer.body)
    except ValueError as exc:
        raise FetchError(N_("%(url)s is not JSON"), url=url) from exc
