"""Pure ASGI middleware: request ids and access logs, security headers, request body size."""

from __future__ import annotations

import os
import random
import re
import time

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.logging import get_logger, log_request, mark_logged
from idp.redaction import LoggedPaths

log = get_logger("idp.http")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


_ids = random.Random()  # noqa: S311 (no secret; seeded from the system, again after a fork)
os.register_at_fork(after_in_child=_ids.seed)


def new_request_id() -> str:
    """128 random bits in hex, like a UUID4's, from a pseudo-random generator of our own (that
    no library seeds): a request id correlates log lines and is no secret, so it needs no system
    call (which would also let other threads take the interpreter lock before the event loop
    gets it back)."""
    return f"{_ids.getrandbits(128):032x}"


class RequestContextMiddleware:
    """Gives every request an id (kept from `X-Request-ID` when well-formed), binds it to every
    log line, echoes it in the response and logs one line per request (the path with its secrets
    redacted by `paths`, no query), after the traceback of an exception that escaped."""

    def __init__(self, app: ASGIApp, *, paths: LoggedPaths) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")  # the last one, if sent twice
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        echoed = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != echoed[0]]
                headers.append(echoed)
                message["headers"] = headers
            await send(message)

        path = self.paths(scope["path"])
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error("unhandled error", method=scope["method"], path=path, exc_info=exc)
            mark_logged(exc)
            raise
        finally:
            duration = round((time.perf_counter() - started) * 1000, 2)
            log_request(request_id, scope["method"], path, status, duration)
            structlog.contextvars.clear_contextvars()


class SecurityHeadersMiddleware:
    """Headers every response carries (ASVS V3.4, RFC 9700 §4.16)."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = [
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
            (
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                "frame-ancestors 'none'; form-action 'self' https: http://localhost:* "
                "http://127.0.0.1:*",
            ),
        ]
        if https:
            self.headers.append(
                ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
            )
        self.raw = [(name.lower().encode(), value.encode()) for name, value in self.headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in self.raw if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """The request body went past the limit while the application was reading it."""


class BodyLimitMiddleware:
    """Refuses a request body over `limit` bytes with 413, before it is read: at once when its
    `Content-Length` says so (nothing of it is read), else as soon as the bytes received pass
    the limit (a chunked body). The application never sees more than `limit` bytes."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value  # the last one, if sent twice
        if declared and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        if declared:
            # The server delivers no more than the declared length (HTTP framing): nothing
            # to count.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watch)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {
                "error": "invalid_request",
                "error_description": f"The request body is larger than {self.limit} bytes.",
            },
            status_code=413,
            headers={"Cache-Control": "no-store", "Connection": "close"},
        )
        await response(scope, receive, send)
