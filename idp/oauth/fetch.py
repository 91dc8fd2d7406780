"""Fetching documents an e-service publishes (`jwks_uri`, `sector_identifier_uri`).

Only the registered URL is fetched, over https (or http on loopback in development), without
following redirects, with a short timeout and a size limit, and never from a private or
loopback address unless the settings allow it (R-AD-04: no server-side request forgery).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from idp.config import Settings
from idp.i18n import N_
from idp.reasons import Reason

MAX_DOCUMENT_BYTES = 64 * 1024


class FetchError(Reason):
    """The document could not be fetched or is not what was expected (a translatable reason)."""


def _check_address(host: str, port: int, settings: Settings) -> None:
    if settings.client_fetch_private_addresses:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchError(N_("cannot resolve %(host)s"), host=host) from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise FetchError(N_("%(host)s resolves to a non-public address"), host=host)


def check_destination(url: str, settings: Settings) -> None:
    """Raise `FetchError` unless the provider may call `url` (same rules as fetching): http(s),
    https only unless private addresses are allowed, never a non-public address then."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FetchError(N_("only http(s) URLs are called"))
    if parts.scheme == "http" and not settings.client_fetch_private_addresses:
        raise FetchError(N_("plain http URLs are not called"))
    _check_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), settings)


def fetch_json(url: str, settings: Settings) -> Any:
    """GET `url` and parse it as JSON, within the limits above."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FetchError(N_("only http(s) URLs are fetched"))
    if parts.scheme == "http" and not settings.client_fetch_private_addresses:
        raise FetchError(N_("plain http URLs are not fetched"))
    _check_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), settings)
    try:
        with (
            httpx.Client(timeout=settings.client_fetch_timeout, follow_redirects=False) as http,
            http.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise FetchError(
                    N_("%(url)s answered %(status)s"), url=url, status=response.status_code
                )
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise FetchError(
                        N_("%(url)s is larger than %(limit)s bytes"),
                        url=url,
                        limit=MAX_DOCUMENT_BYTES,
                    )
    except httpx.HTTPError as exc:
        raise FetchError(N_("%(url)s could not be fetched"), url=url) from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise FetchError(N_("%(url)s is not JSON"), url=url) from exc


class JwksCache:
    """Client key sets fetched from `jwks_uri`, reused for `client_jwks_cache_seconds`."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, settings: Settings, *, refresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(url)
        if entry and not refresh and now - entry[0] < settings.client_jwks_cache_seconds:
            return entry[1]
        if entry and refresh and now - entry[0] < 10:
            return entry[1]  # at most one early refetch every ten seconds
        document = fetch_json(url, settings)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise FetchError(N_("%(url)s is not a JWK set"), url=url)
        with self._lock:
            self._entries[url] = (now, document)
        return document


JWKS_CACHE = JwksCache()
