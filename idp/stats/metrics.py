"""Prometheus metrics for operators, at `/metrics` for the networks in `metrics_allow` only.

Several worker processes: when `PROMETHEUS_MULTIPROC_DIR` names an (emptied at start) folder,
prometheus_client keeps each process's values in files there and `/metrics` adds them up
(its multiprocess mode), so any worker answers with the figures of all of them. Without it the
figures are those of the one process.

- `idp_signins_total{outcome,factor,client_id}`: sign-ins completed (factor: the methods used)
  and failed steps (factor: the step);
- `idp_tokens_issued_total{grant_type}`;
- `idp_errors_total{code}`: OAuth error codes sent (in a redirect or a JSON body) and failed
  sign-in reasons;
- `idp_request_duration_seconds{method,route,status}`: a histogram per route template.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.proxies import Networks
from idp.stats.rules import SIGNIN_STEPS, is_eservice

SIGNINS = Counter(
    "idp_signins",
    "Sign-ins completed and sign-in steps failed.",
    ["outcome", "factor", "client_id"],
)
TOKENS = Counter("idp_tokens_issued", "Tokens issued, by grant type.", ["grant_type"])
ERRORS = Counter("idp_errors", "Errors by code.", ["code"])
LATENCY = Histogram(
    "idp_request_duration_seconds",
    "Time to answer a request, by route.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MAX_ERROR_BODY = 4096
MAX_SERIES = 1000  # label sets kept at hand by the middleware; others are looked up


PENDING = "idp.metrics.pending"  # in Session.info: the events of the open transaction


def observe_on_commit(
    session: Session, type: str, outcome: str, client_id: str | None, data: dict[str, Any]
) -> None:
    """Count an event once its transaction commits (never one rolled back)."""
    session.info.setdefault(PENDING, []).append((type, outcome, client_id, data))


@sqlalchemy_event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for observed in session.info.pop(PENDING, ()):
        observe_event(*observed)


@sqlalchemy_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(PENDING, None)


def observe_event(type: str, outcome: str, client_id: str | None, data: dict[str, Any]) -> None:
    """Count a recorded event."""
    client = client_id if is_eservice(client_id) else "internal"
    if type == "signin.completed":
        factor = "+".join(sorted(str(m) for m in data.get("amr") or [])) or "none"
        SIGNINS.labels("success", factor, client).inc()
    elif type in SIGNIN_STEPS and outcome != "success":
        SIGNINS.labels("failure", SIGNIN_STEPS[type], client).inc()
        ERRORS.labels(str(data.get("reason") or "failure")[:40]).inc()
    elif type == "token.issued":
        TOKENS.labels(str(data.get("grant_type") or "unknown")[:40]).inc()


def _route(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    params = scope.get("path_params") or {}
    if scope.get("endpoint") is None:
        return "unmatched"
    for name, value in params.items():
        path = path.replace(str(value), "{" + str(name) + "}")
    return path


def _error_code(status: int, headers: dict[bytes, bytes], body: bytes) -> str | None:
    location = headers.get(b"location", b"").decode("latin-1")
    if location and "error=" in location:
        found = parse_qs(urlsplit(location).query).get("error")
        return found[0][:40] if found else None
    if status >= 400 and body and b"json" in headers.get(b"content-type", b""):
        try:
            error = json.loads(body).get("error")
        except (ValueError, AttributeError):
            return None
        return str(error)[:40] if error else None
    return None


class LatencyMiddleware:
    """Times every request, and counts the OAuth errors it answers with."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.series: dict[tuple[str, str, int], Any] = {}  # prometheus_client's, by labels

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self.series.get(key)
        if series is None:
            series = LATENCY.labels(method, route, str(status))
            if len(self.series) < MAX_SERIES:
                self.series[key] = series
        series.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        body = b""

        async def watch(message: Message) -> None:
            nonlocal status, headers, body
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
            elif (
                message["type"] == "http.response.body"
                and status >= 400
                and len(body) < MAX_ERROR_BODY
            ):
                body += message.get("body", b"")[:MAX_ERROR_BODY]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            status = int(status)
            self._observe(scope["method"], _route(scope), status, time.perf_counter() - started)
            if status >= 400 or any(name == b"location" for name, _ in headers):
                code = _error_code(status, dict(headers), body)
                if code:
                    ERRORS.labels(code).inc()


def _allowed(request: Request) -> bool:
    networks = Networks(request.app.state.runtime.settings.metrics_allow)
    return request.client is not None and request.client.host in networks


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def endpoint(request: Request) -> Response:
    if not _allowed(request):
        return Response(
            '{"error":"not_found","error_description":"Not Found"}',
            status_code=404,
            media_type="application/json",
        )
    return Response(
        exposition(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
    )
