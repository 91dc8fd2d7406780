"""The console's front page, and the way back from the sign-in pages."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp.admin import access
from idp.admin.pages import Call, admin_view, show
from idp.i18n import N_
from idp.runtime import Runtime


def _home(call: Call) -> Response:
    return show(call, "admin/home.html", {"title": N_("Administration")})


home = admin_view(_home)


async def resume(request: Request) -> Response:
    def work() -> Response:
        runtime: Runtime = request.app.state.runtime
        with runtime.db.transaction() as db:
            return access.resume(db, runtime, request)

    return await run_in_threadpool(work)


async def cancel(request: Request) -> Response:
    def work() -> Response:
        runtime: Runtime = request.app.state.runtime
        with runtime.db.transaction() as db:
            return access.cancel(db, request)

    return await run_in_threadpool(work)
