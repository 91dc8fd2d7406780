"""How `idp serve` runs uvicorn: bounded work per process, and no time for slow clients.

- `http_concurrency_limit`: connections and requests a process holds at once; beyond it new
  requests get 503 at once (uvicorn's `limit_concurrency`).
- `http_keep_alive_timeout`: an idle keep-alive connection is closed after this many seconds.
- `http_max_header_size`: a request line and headers still incomplete beyond this many bytes get
  400 and the connection is closed (h11's `max_incomplete_event_size`; uvicorn's httptools
  protocol buffers a head of any size, so the h11 one is used).
- `http_header_timeout`: uvicorn gives a client unlimited time to send a request's head, so a
  client sending its headers a byte at a time (slowloris) could hold a connection for ever.
  `HeadDeadlineProtocol` closes a connection whose next request head has not arrived in full
  within this many seconds of the connection opening or the previous response ending.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from idp.config import Settings, load_settings


@cache
def _header_timeout() -> float:
    """The setting, read once in each worker process (uvicorn builds the protocol, not us)."""
    return load_settings().http_header_timeout


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request's line and headers."""

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._await_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head has arrived (or was refused)
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE:  # ready for the next request on this connection
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(_header_timeout(), self._head_too_late)

    def _stop_waiting(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_late(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The options of `uvicorn.run` that the settings decide."""
    return {
        "http": HeadDeadlineProtocol,
        "limit_concurrency": settings.http_concurrency_limit,
        "timeout_keep_alive": settings.http_keep_alive_timeout,
        "h11_max_incomplete_event_size": settings.http_max_header_size,
        # The app reads X-Forwarded-For itself, from `trusted_proxies` only (idp/proxies.py).
        "proxy_headers": False,
        "server_header": False,
        "log_config": None,
    }
