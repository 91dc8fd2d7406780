"""The application: every route, every middleware and the lifespan, in one place."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ExceptionHandler

from idp import csrf, health, templating
from idp.account import reports_admin
from idp.account import views as account
from idp.admin import api as admin_api
from idp.admin import audit as admin_audit
from idp.admin import citizens as admin_citizens
from idp.admin import client_edit as admin_client_edit
from idp.admin import clients as admin_clients
from idp.admin import home as admin_home
from idp.admin import indicator_data
from idp.admin import keys as admin_keys
from idp.admin import openapi as admin_openapi
from idp.audit import sealer as audit_sealer
from idp.auth import reset
from idp.auth import views as signin
from idp.config import Settings, load_settings
from idp.db import DatabaseUnavailable
from idp.feedback import api as ratings_api
from idp.feedback import question
from idp.i18n import N_
from idp.logging import configure_logging, get_logger
from idp.logout import delivery as logout_delivery
from idp.logout import views as logout
from idp.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from idp.oauth import registration
from idp.oauth import views as oauth
from idp.oauth.documents import PublishedDocuments
from idp.proxies import TrustedProxiesMiddleware
from idp.redaction import LoggedPaths, SecretPathRoute
from idp.runtime import Runtime
from idp.stats import opendata
from idp.stats import page as public_stats
from idp.stats import views as indicators
from idp.stats import worker as indicator_worker
from idp.stats.metrics import LatencyMiddleware
from idp.stats.metrics import endpoint as metrics_endpoint
from idp.unavailable import database_unavailable, wants_page

log = get_logger("idp.app")
API = admin_api.PREFIX


async def http_error(request: Request, exc: Exception) -> Response:
    """A page in the citizen's language for a browser that asked for an unknown address; JSON
    (`not_found`, `request_error`) for everyone else, as for the database's 503."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and wants_page(request):
        page = templating.render(
            request,
            "error.html",
            {
                "title": N_("Page not found"),
                "message": N_(
                    "If you typed the address, check that it is correct. If you followed a "
                    "link, it may be out of date: go back to the e-service you came from."
                ),
            },
            status_code=404,
        )
        page.headers.update(exc.headers or {})
        return page
    return JSONResponse(
        {
            "error": "not_found" if exc.status_code == 404 else "request_error",
            "error_description": exc.detail,
        },
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def favicon(request: Request) -> Response:
    """Our mark, where browsers look for it (scripts/update_frontend.py draws it)."""
    return FileResponse(
        templating.STATIC_DIR / "favicon.ico",
        media_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )


async def server_error(request: Request, exc: Exception) -> Response:
    """The answer to an unhandled exception, which `RequestContextMiddleware` has logged."""
    return JSONResponse(
        {"error": "server_error", "error_description": "An unexpected error occurred."},
        status_code=500,
        headers={"Cache-Control": "no-store"},
    )


def api(method: str, path: str) -> Route:
    """A route of the admin API: its operation is found by method and path (idp/admin/api.py)."""
    return Route(API + path, admin_api.handler(method, path), methods=[method])


def routes() -> list[BaseRoute]:
    return [
        Route("/health/alive", health.alive, methods=["GET"]),
        Route("/health/ready", health.ready, methods=["GET"]),
        Route("/.well-known/openid-configuration", oauth.openid_configuration, methods=["GET"]),
        Route("/jwks", oauth.jwks, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        # OpenID Connect protocol (idp/oauth/views.py)
        Route("/authorize", oauth.authorization, methods=["GET", "POST"]),
        Route("/authorize/resume/{interaction_id}", oauth.authorization_resume, methods=["GET"]),
        Route("/authorize/cancel/{interaction_id}", oauth.authorization_cancel, methods=["GET"]),
        Route("/consent/{interaction_id}", oauth.consent, methods=["GET", "POST"]),
        Route("/feedback/{interaction_id}", question.question_page, methods=["GET"]),
        Route("/feedback/{interaction_id}", question.question_submit, methods=["POST"]),
        Route("/token", oauth.token, methods=["POST"]),
        Route("/userinfo", oauth.userinfo, methods=["GET", "POST"]),
        Route("/introspect", oauth.introspection, methods=["POST"]),
        Route("/revoke", oauth.revocation, methods=["POST"]),
        # The e-services' ratings of their transactions (idp/feedback/api.py)
        Route("/ratings", ratings_api.ratings, methods=["POST"]),
        # Single logout (idp/logout/): RP-initiated, back- and front-channel
        Route("/logout", logout.end_session, methods=["GET", "POST"]),
        Route("/logout/confirm", logout.confirm, methods=["POST"]),
        Route("/logout/done", logout.done, methods=["GET"]),
        # Dynamic client registration (idp/oauth/registration.py: RFC 7591, RFC 7592)
        Route("/register", registration.register, methods=["POST"]),
        Route(
            "/register/{client_id}", registration.configuration, methods=["GET", "PUT", "DELETE"]
        ),
        # Sign-in pages (idp/auth/views.py, idp/auth/reset.py)
        Route("/login/{interaction_id}", signin.password_page, methods=["GET"]),
        Route("/login/{interaction_id}", signin.password_submit, methods=["POST"]),
        Route("/login/{interaction_id}/totp", signin.totp_page, methods=["GET"]),
        Route("/login/{interaction_id}/totp", signin.totp_submit, methods=["POST"]),
        Route("/login/{interaction_id}/recovery", signin.recovery_page, methods=["GET"]),
        Route("/login/{interaction_id}/recovery", signin.recovery_submit, methods=["POST"]),
        Route("/login/{interaction_id}/email", signin.email_page, methods=["GET"]),
        Route("/login/{interaction_id}/email", signin.email_submit, methods=["POST"]),
        Route("/login/{interaction_id}/email/send", signin.email_send, methods=["POST"]),
        Route("/login/{interaction_id}/enrol", signin.enrol_page, methods=["GET"]),
        Route("/login/{interaction_id}/enrol", signin.enrol_submit, methods=["POST"]),
        Route(
            "/login/{interaction_id}/recovery-codes", signin.recovery_codes_page, methods=["GET"]
        ),
        Route(
            "/login/{interaction_id}/recovery-codes",
            signin.recovery_codes_submit,
            methods=["POST"],
        ),
        Route("/login/{interaction_id}/new-password", signin.new_password_page, methods=["GET"]),
        Route("/login/{interaction_id}/new-password", signin.new_password_submit, methods=["POST"]),
        Route("/login/{interaction_id}/forgot", reset.forgot_page, methods=["GET"]),
        Route("/login/{interaction_id}/forgot", reset.forgot_submit, methods=["POST"]),
        SecretPathRoute(
            "/password/reset/{token}", reset.reset_page, secret=["token"], methods=["GET"]
        ),
        SecretPathRoute(
            "/password/reset/{token}", reset.reset_submit, secret=["token"], methods=["POST"]
        ),
        Route("/password/reset-done", reset.reset_done, methods=["GET"]),
        # Admin console (idp/admin/): pages share the sign-in pages through interactions
        Route("/admin/", admin_home.home, methods=["GET"]),
        Route("/admin/resume/{interaction_id}", admin_home.resume, methods=["GET"]),
        Route("/admin/cancel/{interaction_id}", admin_home.cancel, methods=["GET"]),
        Route("/admin/clients", admin_clients.clients_page, methods=["GET"]),
        Route("/admin/clients/new", admin_clients.register_page, methods=["GET"]),
        Route("/admin/clients/new", admin_clients.register_submit, methods=["POST"]),
        Route("/admin/clients/{client_id}", admin_clients.client_page, methods=["GET"]),
        Route("/admin/clients/{client_id}/edit", admin_client_edit.edit_page, methods=["GET"]),
        Route("/admin/clients/{client_id}/edit", admin_client_edit.edit_submit, methods=["POST"]),
        # An action that cannot be undone: its confirmation page (GET), then the action (POST)
        Route(
            "/admin/clients/{client_id}/rotate-secret",
            admin_clients.confirm_rotate_secret,
            methods=["GET"],
        ),
        Route(
            "/admin/clients/{client_id}/rotate-secret",
            admin_clients.rotate_secret,
            methods=["POST"],
        ),
        Route(
            "/admin/clients/{client_id}/disable",
            admin_clients.confirm_disable_client,
            methods=["GET"],
        ),
        Route("/admin/clients/{client_id}/disable", admin_clients.disable_client, methods=["POST"]),
        Route("/admin/clients/{client_id}/enable", admin_clients.enable_client, methods=["POST"]),
        Route("/admin/citizens", admin_citizens.citizens_page, methods=["GET"]),
        Route("/admin/citizens/{username}", admin_citizens.citizen_page, methods=["GET"]),
        Route(
            "/admin/citizens/{username}/disable",
            admin_citizens.confirm_disable_citizen,
            methods=["GET"],
        ),
        Route(
            "/admin/citizens/{username}/disable", admin_citizens.disable_citizen, methods=["POST"]
        ),
        Route("/admin/citizens/{username}/enable", admin_citizens.enable_citizen, methods=["POST"]),
        Route("/admin/citizens/{username}/unlock", admin_citizens.unlock_citizen, methods=["POST"]),
        Route(
            "/admin/citizens/{username}/reset-second-factor",
            admin_citizens.confirm_reset_second_factor,
            methods=["GET"],
        ),
        Route(
            "/admin/citizens/{username}/reset-second-factor",
            admin_citizens.reset_second_factor,
            methods=["POST"],
        ),
        Route(
            "/admin/citizens/{username}/end-sessions",
            admin_citizens.confirm_end_sessions,
            methods=["GET"],
        ),
        Route(
            "/admin/citizens/{username}/end-sessions",
            admin_citizens.end_sessions,
            methods=["POST"],
        ),
        Route("/admin/keys", admin_keys.keys_page, methods=["GET"]),
        Route("/admin/keys/rotate", admin_keys.rotate_key, methods=["POST"]),
        Route("/admin/keys/rotate-now", admin_keys.confirm_rotate_now, methods=["GET"]),
        Route("/admin/keys/rotate-now", admin_keys.rotate_now, methods=["POST"]),
        Route("/admin/keys/{kid}/retire", admin_keys.confirm_retire_key, methods=["GET"]),
        Route("/admin/keys/{kid}/retire", admin_keys.retire_key, methods=["POST"]),
        Route("/admin/audit", admin_audit.audit_page, methods=["GET"]),
        Route("/admin/audit/verify", admin_audit.verify_page, methods=["GET"]),
        # Indicators and security reports (idp/stats/, idp/account/)
        Route("/admin/indicators", indicators.indicators_page, methods=["GET"]),
        Route("/admin/indicators.csv", indicators.indicators_csv, methods=["GET"]),
        Route("/admin/indicators.json", indicators.indicators_json, methods=["GET"]),
        # What the indicators are computed from, and what citizens said (idp/admin/)
        Route(indicator_data.TRANSACTIONS, indicator_data.transactions_page, methods=["GET"]),
        Route(indicator_data.TRANSACTIONS, indicator_data.transactions_enter, methods=["POST"]),
        Route(
            indicator_data.TRANSACTIONS + "/import",
            indicator_data.transactions_import,
            methods=["POST"],
        ),
        Route(indicator_data.COSTS, indicator_data.costs_page, methods=["GET"]),
        Route(indicator_data.COSTS, indicator_data.costs_enter, methods=["POST"]),
        Route(indicator_data.COSTS + "/import", indicator_data.costs_import, methods=["POST"]),
        Route(indicator_data.COMMENTS, indicator_data.comments_page, methods=["GET"]),
        Route("/admin/security-reports", reports_admin.reports_page, methods=["GET"]),
        # The public statistics: the page (idp/stats/page.py) and its open data (opendata.py)
        Route("/stats", public_stats.stats_page, methods=["GET"]),
        Route("/stats/kpis.csv", opendata.kpis_csv, methods=["GET"]),
        Route("/stats/kpis.json", opendata.kpis_json, methods=["GET"]),
        Route("/stats/datapackage.json", opendata.datapackage, methods=["GET"]),
        # The citizen's account (idp/account/): signs in through interactions too; an action
        # that cannot be undone has its confirmation page (GET) at the action's address (POST)
        Route("/account", account.home, methods=["GET"]),
        Route("/account/resume/{interaction_id}", account.resume, methods=["GET"]),
        Route("/account/cancel/{interaction_id}", account.cancel, methods=["GET"]),
        Route("/account/password", account.password_page, methods=["GET"]),
        Route("/account/password", account.password_submit, methods=["POST"]),
        Route("/account/security", account.security, methods=["GET"]),
        Route("/account/security/totp", account.totp_page, methods=["GET"]),
        Route("/account/security/totp", account.totp_submit, methods=["POST"]),
        Route("/account/security/recovery-codes", account.recovery_codes_page, methods=["GET"]),
        Route("/account/security/recovery-codes", account.recovery_codes, methods=["POST"]),
        Route("/account/sessions", account.sessions_page, methods=["GET"]),
        Route("/account/sessions/end-all", account.end_all_page, methods=["GET"]),
        Route("/account/sessions/end-all", account.end_all_sessions, methods=["POST"]),
        Route("/account/sessions/{sid}/end", account.end_session_page, methods=["GET"]),
        Route("/account/sessions/{sid}/end", account.end_session, methods=["POST"]),
        Route("/account/services", account.services, methods=["GET"]),
        Route("/account/services/{client_id}/revoke", account.revoke_page, methods=["GET"]),
        Route("/account/services/{client_id}/revoke", account.revoke_service, methods=["POST"]),
        Route("/account/history", account.history_page, methods=["GET"]),
        Route("/account/history.json", account.history_json, methods=["GET"]),
        Route("/account/history/{event_id}/not-me", account.not_me_page, methods=["GET"]),
        Route("/account/history/{event_id}/not-me", account.not_me, methods=["POST"]),
        Route("/account/secured", account.secured, methods=["GET"]),
        Route("/account/signed-out", account.signed_out, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        # Admin API (idp/admin/api.py): JSON, admin-scope Bearer tokens, OpenAPI described
        Route(API + "/openapi.json", admin_openapi.openapi_json, methods=["GET"]),
        api("GET", "/clients"),
        api("POST", "/clients"),
        api("GET", "/clients/{client_id}"),
        api("PATCH", "/clients/{client_id}"),
        api("POST", "/clients/{client_id}/rotate-secret"),
        api("POST", "/clients/{client_id}/disable"),
        api("POST", "/clients/{client_id}/enable"),
        api("POST", "/clients/{client_id}/indicator-settings"),
        api("GET", "/channel-totals"),
        api("POST", "/channel-totals"),
        api("POST", "/channel-totals/import"),
        api("GET", "/costs"),
        api("POST", "/costs"),
        api("POST", "/costs/import"),
        api("GET", "/feedback/comments"),
        api("GET", "/citizens"),
        api("GET", "/citizens/{username}"),
        api("POST", "/citizens/{username}/disable"),
        api("POST", "/citizens/{username}/enable"),
        api("POST", "/citizens/{username}/unlock"),
        api("POST", "/citizens/{username}/reset-second-factor"),
        api("POST", "/citizens/{username}/end-sessions"),
        api("GET", "/keys"),
        api("POST", "/keys/rotate"),
        api("POST", "/keys/{kid}/retire"),
        api("GET", "/audit"),
        api("GET", "/audit/verify"),
        api("POST", "/initial-tokens"),
        Mount("/static", StaticFiles(directory=templating.STATIC_DIR), name="static"),
    ]


def middleware(settings: Settings, table: list[BaseRoute]) -> list[Middleware]:
    """Every request passes these, outermost first (all pure ASGI: none copies a response)."""
    return [
        Middleware(TrustedProxiesMiddleware, trusted=settings.trusted_proxies),
        Middleware(RequestContextMiddleware, paths=LoggedPaths(table)),
        Middleware(LatencyMiddleware),
        Middleware(SecurityHeadersMiddleware, https=settings.issuer.startswith("https://")),
        Middleware(BodyLimitMiddleware, limit=settings.max_request_body),
    ]


EXCEPTION_HANDLERS: dict[Any, ExceptionHandler] = {
    DatabaseUnavailable: database_unavailable,
    csrf.CsrfFailed: csrf.csrf_failed,
    HTTPException: http_error,
    Exception: server_error,
}


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Starlette:
    """Build the provider. Pass `runtime` to share one with tests or the CLI."""
    settings = runtime.settings if runtime else (settings or load_settings())
    runtime = runtime or Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # As many request threads as database connections (see `database_pool_size`).
        to_thread.current_default_thread_limiter().total_tokens = settings.database_pool_size
        for warning in settings.unsafe_defaults():
            log.warning("unsafe development default", detail=warning)
        made = runtime.keyring.ensure_initial()
        for key in made:
            log.warning("generated development signing key", kid=key.kid, alg=key.alg)
        await runtime.db.start()  # the token endpoints' transactions in the event loop
        async with (
            logout_delivery.worker(runtime),  # retries back-channel logouts
            audit_sealer.worker(runtime),  # seals new audit entries into the chain
            indicator_worker.worker(runtime),  # counts new events into the indicators
        ):
            yield
            # Requests have been answered: what is still queued is written before the sealer's
            # last round.
            await to_thread.run_sync(runtime.group_commit.close)
        await runtime.db.stop()
        runtime.db.dispose()

    table = routes()
    app = Starlette(
        routes=table,
        middleware=middleware(settings, table),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.documents = PublishedDocuments(settings, runtime.keyring)
    return app


def asgi() -> Starlette:
    """Entry point for ASGI servers (`uvicorn --factory idp.app:asgi --no-proxy-headers`: the
    app reads `X-Forwarded-For` itself, from `trusted_proxies` only; `idp serve` does this)."""
    settings = load_settings()
    configure_logging(json=settings.json_logs, level=settings.log_level)
    app = create_app(settings)
    # Everything built so far (modules, the routes, the schema, the templates) lives as long as
    # the process: out of the collector's sight, a full collection no longer walks it on every
    # run (it paused the whole process for about 100 ms, the tail of the latency).
    gc.collect()
    gc.freeze()
    return app
