"""The public statistics as open data, for anyone, no sign-in: `/stats/kpis.csv`,
`/stats/kpis.json` and `/stats/datapackage.json` (a Frictionless Data Package describing
both). Cacheable: each answer has a strong `ETag` (a hash of its bytes) and `Cache-Control:
public`; a request whose `If-None-Match` names the current tag gets 304 without a body."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp.runtime import Runtime
from idp.stats import public

MAX_AGE = 300  # seconds; the figures are counted about once a minute


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(request: Request, tag: str) -> bool:
    wanted = request.headers.get("if-none-match", "")
    names = {part.strip().removeprefix("W/") for part in wanted.split(",")}
    return "*" in names or tag in names


def cacheable(request: Request, body: bytes, media_type: str, filename: str) -> Response:
    """`body` with its ETag, or 304 when the client has it already."""
    tag = etag(body)
    headers = {
        "ETag": tag,
        "Cache-Control": f"public, max-age={MAX_AGE}",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
    if matches(request, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def figures(runtime: Runtime) -> public.PublicStats:
    settings = runtime.settings
    with runtime.db.read() as db:
        return public.monthly(
            db, min_cell=settings.stats_min_cell, currency=settings.stats_currency
        )


def _download(
    render: Callable[[public.PublicStats], str], media_type: str, filename: str
) -> Callable[[Request], Awaitable[Response]]:
    async def view(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        stats = await run_in_threadpool(figures, runtime)
        return cacheable(request, render(stats).encode(), media_type, filename)

    return view


kpis_csv = _download(public.to_csv, "text/csv; charset=utf-8", "kpis.csv")
kpis_json = _download(public.to_json, "application/json", "kpis.json")


async def datapackage(request: Request) -> Response:
    settings = request.app.state.runtime.settings
    document = public.datapackage(issuer=settings.issuer, min_cell=settings.stats_min_cell)
    body = json.dumps(document, ensure_ascii=False, indent=2).encode()
    return cacheable(request, body, "application/json", "datapackage.json")
