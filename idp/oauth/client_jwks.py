"""The key sets e-services publish at their `jwks_uri`, as `private_key_jwt` reads them.

Per URL, in each process (`Runtime.client_jwks`):

- a key set is reused for `client_jwks_cache_seconds`; an assertion whose `kid` it lacks
  triggers an early fetch, at most one every ten seconds;
- at most one fetch is in flight: other requests for the URL wait for its outcome (each fetch
  ends within `client_fetch_timeout`, see `idp.oauth.fetch`);
- a failed fetch is remembered: for `client_fetch_backoff` seconds, doubling with each further
  failure up to `client_fetch_backoff_max`, requests fail at once without calling the URL;
- at most `client_jwks_cache_entries` URLs are remembered, the least recently used forgotten
  first.

Used from the event loop only, so the waits hold no request thread and no database
connection.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import anyio

from idp.config import Settings
from idp.i18n import N_
from idp.logging import get_logger
from idp.oauth.fetch import FetchError, fetch_json

log = get_logger("idp.oauth")

EARLY_REFETCH_INTERVAL = 10.0


@dataclass
class _Entry:
    document: dict[str, Any] | None = None
    fetched_at: float = -math.inf
    failures: int = 0
    retry_at: float = -math.inf
    error: FetchError | None = None
    in_flight: anyio.Event | None = None


def backoff(settings: Settings, failures: int) -> float:
    """Seconds a URL is left alone after its `failures`-th consecutive failed fetch."""
    doubled = settings.client_fetch_backoff * 2 ** min(max(failures - 1, 0), 32)
    return float(min(doubled, settings.client_fetch_backoff_max))


def _has_kid(document: dict[str, Any], kid: str) -> bool:
    return any(isinstance(key, dict) and key.get("kid") == kid for key in document["keys"])


class ClientKeySets:
    """`jwks_uri` -> its key set, or the failure that keeps it from being fetched for now."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def _entry(self, url: str) -> _Entry:
        entry = self._entries.get(url)
        if entry is not None:
            self._entries.move_to_end(url)
            return entry
        entry = self._entries[url] = _Entry()
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    @staticmethod
    def _usable(entry: _Entry, settings: Settings, kid: str | None) -> bool:
        age = time.monotonic() - entry.fetched_at
        if entry.document is None or age >= settings.client_jwks_cache_seconds:
            return False
        return kid is None or _has_kid(entry.document, kid) or age < EARLY_REFETCH_INTERVAL

    async def get(self, url: str, settings: Settings, *, kid: str | None = None) -> dict[str, Any]:
        """The key set at `url` (`{"keys": [...]}`), fetched if need be; raises `FetchError`
        when it cannot be had now."""
        started = time.monotonic()
        entry = self._entry(url)
        if entry.in_flight is not None:
            await entry.in_flight.wait()
        elif not self._usable(entry, settings, kid):
            if started < entry.retry_at:
                raise self._again(entry, url)
            await self._fetch(url, entry, settings)
        document = entry.document
        if document is None or (
            entry.fetched_at < started and not self._usable(entry, settings, None)
        ):
            raise self._again(entry, url)  # the fetch failed: a stale set is never used
        return document

    @staticmethod
    def _again(entry: _Entry, url: str) -> FetchError:
        """A fresh exception with the reason of the last failure."""
        if entry.error is None:
            return FetchError(N_("%(url)s could not be fetched"), url=url)
        return FetchError(entry.error.message, **entry.error.values)

    async def _fetch(self, url: str, entry: _Entry, settings: Settings) -> None:
        entry.in_flight = done = anyio.Event()
        try:
            document = await fetch_json(url, settings)
            if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
                raise FetchError(N_("%(url)s is not a JWK set"), url=url)
        except FetchError as exc:
            entry.failures += 1
            entry.error = exc
            wait = backoff(settings, entry.failures)
            entry.retry_at = time.monotonic() + wait
            log.warning("jwks_uri not fetched", url=url, reason=str(exc), retry_in=wait)
        else:
            entry.document = document
            entry.fetched_at = time.monotonic()
            entry.failures = 0
            entry.retry_at = -math.inf
            entry.error = None
        finally:
            entry.in_flight = None
            done.set()
