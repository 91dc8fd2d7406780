"""How `idp serve` runs uvicorn: bounded work per process, and no time for slow clients.

- `http_concurrency_limit`: connections and requests a process holds at once; beyond it new
  requests get 503 at once (uvicorn's `limit_concurrency`).
- `http_keep_alive_timeout`: an idle keep-alive connection is closed after this many seconds.
- `http_header_timeout` and `http_max_header_size`: uvicorn gives a client unlimited time to send
  a request's line and headers (so a client sending them a byte at a time, slowloris, could hold
  a connection for ever), and its httptools protocol buffers a head of any size.
  `BoundedHeadProtocol` adds both limits to that protocol (the fast one; uvicorn's h11 protocol
  costs about 75 µs more per request, docs/performance.md).
- One write per response: uvicorn writes a response's head and its body separately, two system
  calls (and, on loopback, twice the TCP work); `CorkedTransport` joins what is written in one
  turn of the event loop into one write, as Node corks a response until the next tick.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from idp.config import Settings, load_settings

_TOO_LARGE = b"Request header fields too large."


@cache
def _settings() -> Settings:
    """The settings, read once in each worker process (uvicorn builds the protocol, not us)."""
    return load_settings()


class _HeadTooLargeError(Exception):
    """Raised from a parser callback to stop httptools at a head over the limit."""


class CorkedTransport:
    """A transport whose writes in one turn of the event loop leave together, in one write at
    the end of that turn (a response's head and body, usually). Closing sends what is held
    first; everything else is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)

    def _flush(self) -> None:
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline and a size limit for each request's head.

    The deadline runs from the connection opening, the end of the previous response, or the
    end of a request body still arriving after its response, until httptools reports the
    headers complete; then the connection is closed unanswered. The size is checked twice:
    after each read, the bytes received while the head is still incomplete (counted from the
    first read after the previous request ended, so a pipelined head sharing a read with that
    request is never blamed for its bytes); and, once complete, the head's request line and
    header lines (optional spaces around values not counted). A head over
    `http_max_header_size` gets 431 and its connection is closed.

    Written against uvicorn 0.54's `httptools_impl`, whose callbacks and attributes (`url`,
    `headers`, `cycle`, `send_400_response`, `timeout_keep_alive_handler`) it relies on;
    tests/test_serve.py drives every limit through a real `idp serve`.
    """

    _head_deadline: asyncio.TimerHandle | None = None
    _received = 0  # bytes received on the connection
    _head_from: int | None = 0  # `_received` where counting the awaited head began; None: complete
    _head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        corked = CorkedTransport(transport, asyncio.get_running_loop())
        super().connection_made(corked)  # type: ignore[arg-type]
        self._await_head()

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        super().data_received(data)  # feeds httptools, which calls the callbacks below
        if (
            self._head_from is not None
            and self._received - self._head_from > _settings().http_max_header_size
            and not self.transport.is_closing()
        ):
            self._refuse_head()

    def on_headers_complete(self) -> None:
        self._head_from = None
        self._stop_waiting()
        if self._head_size() > _settings().http_max_header_size:
            self._head_too_large = True  # stop the parser; uvicorn then calls send_400_response
            raise _HeadTooLargeError
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_from = self._received  # the next head is counted from the next read
        if self.cycle.response_complete:  # answered before its body ended: the next head is due
            self._await_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._head_from is not None:  # the next head is awaited (not already in the pipeline)
            self._await_head()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse (ours, to a head too large, is 431)."""
        if self._head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _refuse_head(self) -> None:
        self.logger.warning("Request head over http_max_header_size refused.")
        headers = b"".join(b"%s: %s\r\n" % header for header in self.server_state.default_headers)
        self.transport.write(
            STATUS_LINE[431]
            + headers
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_TOO_LARGE)
            + _TOO_LARGE
        )
        self.transport.close()

    def _head_size(self) -> int:
        """The complete head's request line and header lines (method, target, version, names,
        values and the separators between them)."""
        method = self.parser.get_method()
        size = len(method) + 1 + len(self.url) + len(b" HTTP/1.1\r\n") + len(b"\r\n")
        for name, value in self.headers:
            size += len(name) + len(value) + len(": \r\n")
        return size

    def _await_head(self) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(
                _settings().http_header_timeout,
                self.timeout_keep_alive_handler,  # closes it
            )

    def _stop_waiting(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The options of `uvicorn.run` that the settings decide."""
    return {
        "http": BoundedHeadProtocol,
        "limit_concurrency": settings.http_concurrency_limit,
        "timeout_keep_alive": settings.http_keep_alive_timeout,
        # The app reads X-Forwarded-For itself, from `trusted_proxies` only (idp/proxies.py).
        "proxy_headers": False,
        "server_header": False,
        "log_config": None,
    }
