"""The application: every route, every middleware and the lifespan, in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from idp import health
from idp.config import Settings, load_settings
from idp.db import DatabaseUnavailable
from idp.logging import configure_logging, get_logger
from idp.middleware import RequestContextMiddleware, SecurityHeadersMiddleware
from idp.oauth import views as oauth
from idp.runtime import Runtime

log = get_logger("idp.app")


async def database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable", path=request.url.path)
    return JSONResponse(
        {"error": "temporarily_unavailable", "error_description": "Please try again shortly."},
        status_code=503,
        headers={"Retry-After": "5", "Cache-Control": "no-store"},
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {
            "error": "not_found" if exc.status_code == 404 else "request_error",
            "error_description": exc.detail,
        },
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": "server_error", "error_description": "An unexpected error occurred."},
        status_code=500,
        headers={"Cache-Control": "no-store"},
    )


def routes() -> list[Route]:
    return [
        Route("/health/alive", health.alive, methods=["GET"]),
        Route("/health/ready", health.ready, methods=["GET"]),
        Route("/.well-known/openid-configuration", oauth.openid_configuration, methods=["GET"]),
        Route("/jwks", oauth.jwks, methods=["GET"]),
    ]


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Starlette:
    """Build the provider. Pass `runtime` to share one with tests or the CLI."""
    settings = runtime.settings if runtime else (settings or load_settings())
    runtime = runtime or Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for warning in settings.unsafe_defaults():
            log.warning("unsafe development default", detail=warning)
        made = runtime.keyring.ensure_initial()
        for key in made:
            log.warning("generated development signing key", kid=key.kid, alg=key.alg)
        yield
        runtime.db.dispose()

    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(RequestContextMiddleware),
            Middleware(SecurityHeadersMiddleware, https=settings.issuer.startswith("https://")),
        ],
        exception_handlers={
            DatabaseUnavailable: database_unavailable,
            HTTPException: http_error,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


def asgi() -> Starlette:
    """Entry point for ASGI servers (`uvicorn --factory idp.app:asgi`)."""
    settings = load_settings()
    configure_logging(json=settings.json_logs, level=settings.log_level)
    return create_app(settings)
