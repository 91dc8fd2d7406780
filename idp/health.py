"""Liveness and readiness probes."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from idp.db import DatabaseUnavailable
from idp.db.migrate import is_up_to_date
from idp.runtime import Runtime

NO_STORE = {"Cache-Control": "no-store"}


async def alive(request: Request) -> JSONResponse:
    """The process is up and serving."""
    return JSONResponse({"status": "alive"}, headers=NO_STORE)


def _readiness(runtime: Runtime) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        runtime.db.ping()
        checks["database"] = (
            "ok"
            if is_up_to_date(runtime.db.engine)
            else ("schema is not up to date: run `idp db upgrade`")
        )
    except DatabaseUnavailable:
        checks["database"] = "unreachable"
    except Exception:  # a database that answers oddly is still not ready
        checks["database"] = "unreachable"
    runtime.keyring.refresh()
    algs = runtime.keyring.signing_algs()
    wanted = runtime.settings.default_signing_alg
    checks["keys"] = "ok" if wanted in algs else f"no active {wanted} signing key"
    return all(value == "ok" for value in checks.values()), checks


async def ready(request: Request) -> JSONResponse:
    """The database answers with an up-to-date schema and the signing keys are loaded."""
    ok, checks = await run_in_threadpool(_readiness, request.app.state.runtime)
    body = {"status": "ready" if ok else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503, headers=NO_STORE)
