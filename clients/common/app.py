"""An example e-service: sign in with the national digital identity, see what it released,
refresh the tokens, sign out everywhere.

Built on Authlib's Starlette client: discovery, authorization code with PKCE (S256), `nonce`
and ID-token validation come from it; this module adds the server-side session, the mix-up
check, refresh, RP-initiated logout and the back-channel logout receiver.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clients.common.display import as_json, times, when
from clients.common.settings import RPSettings
from clients.common.store import SessionStore
from clients.common.tokens import (
    TokenRejected,
    check_issuer_parameter,
    check_logout_token,
    check_refreshed_id_token,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
DISPLAY = {"as_json": as_json, "when": when, "times": times}  # for the templates
SESSION_KEY = "rp_session"
CSRF_KEY = "csrf"

# Friendly words for the errors the provider may send back (RFC 6749 §4.1.2.1, OIDC §3.1.2.6).
PROVIDER_ERRORS = {
    "access_denied": "You cancelled the sign-in, or did not agree to share your details.",
    "login_required": "You need to sign in first.",
    "consent_required": "Your agreement to share your details is needed.",
    "interaction_required": "The provider needs you to do something before you can continue.",
    "temporarily_unavailable": "The sign-in service is busy. Please try again in a moment.",
}


@dataclass(frozen=True)
class Look:
    """How an e-service presents itself."""

    tagline: str
    theme: str  # a class of rp.css that sets its colours
    about: str


@dataclass
class ClientAuth:
    """How the e-service authenticates at the token endpoint."""

    method: str
    secret: Any = None  # the client secret, or the private key for private_key_jwt
    extra_methods: list[Any] = field(default_factory=list)
    routes: list[BaseRoute] = field(default_factory=list)


class SecurityHeaders:
    """Headers on every response: no framing, no sniffing, forms only to self and provider."""

    def __init__(self, app: ASGIApp, *, issuer: str) -> None:
        self.app = app
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (
                b"content-security-policy",
                (
                    "default-src 'self'; object-src 'none'; base-uri 'none'; "
                    f"frame-ancestors 'none'; form-action 'self' {issuer}"
                ).encode(),
            ),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, add_headers)


def _display_name(claims: dict[str, Any]) -> str:
    full = " ".join(p for p in (claims.get("given_name"), claims.get("family_name")) if p)
    return str(claims.get("name") or full or claims.get("sub") or "citizen")


def create_rp_app(settings: RPSettings, look: Look, auth: ClientAuth) -> Starlette:
    """Build one e-service."""
    store = SessionStore(settings.data_dir / "sessions.db")
    oauth = OAuth()
    oauth.register(
        name="idp",
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        client_id=settings.client_id,
        client_secret=auth.secret,
        client_auth_methods=auth.extra_methods or None,
        client_kwargs={
            "scope": settings.scope,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": auth.method,
            "timeout": 10,
        },
    )
    oidc: StarletteOAuth2App = oauth.create_client("idp")

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        context.setdefault("csrf_token", csrf_token(request))
        response = templates.TemplateResponse(
            request,
            name,
            {
                "service": settings.name,
                "look": look,
                "account_url": f"{settings.issuer}/account",
                **DISPLAY,
                **context,
            },
            status_code=status_code,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def message(
        request: Request, title: str, text: str, status_code: int = 200, **extra: Any
    ) -> Response:
        return page(request, "message.html", status_code, title=title, text=text, **extra)

    def csrf_token(request: Request) -> str:
        token = request.session.get(CSRF_KEY)
        if not token:
            token = request.session[CSRF_KEY] = secrets.token_urlsafe(32)
        return str(token)

    async def checked_form(request: Request) -> dict[str, Any] | None:
        form = await request.form()
        sent = str(form.get("csrf_token", ""))
        expected = str(request.session.get(CSRF_KEY, ""))
        if not expected or not secrets.compare_digest(sent, expected):
            return None
        return dict(form)

    def current(request: Request) -> tuple[str | None, dict[str, Any] | None]:
        key = request.session.get(SESSION_KEY)
        data = store.get(key)
        if key and data is None:
            request.session.pop(SESSION_KEY, None)  # ended here, by expiry or by the provider
        return key, data

    def unavailable(request: Request) -> Response:
        return message(
            request,
            "The sign-in service cannot be reached",
            "Please try again in a few minutes.",
            503,
        )

    # Views ---------------------------------------------------------------------------------

    async def home(request: Request) -> Response:
        _, data = current(request)
        if data is None:
            return page(request, "home.html", citizen=None)
        return page(
            request,
            "home.html",
            citizen=_display_name({**data["id_claims"], **data.get("userinfo", {})}),
            data=data,
        )

    async def login(request: Request) -> Response:
        try:
            response: Response = await oidc.authorize_redirect(request, settings.redirect_uri)
        except (httpx.HTTPError, OAuthError, KeyError, ValueError):
            return unavailable(request)
        return response

    async def callback(request: Request) -> Response:
        error = request.query_params.get("error")
        if error:
            return message(
                request,
                "You are not signed in",
                PROVIDER_ERRORS.get(error, "The sign-in did not complete. Please try again."),
                400,
                retry=True,
            )
        try:
            metadata = await oidc.load_server_metadata()
            check_issuer_parameter(metadata, request.query_params.get("iss"))
            token = await oidc.authorize_access_token(request)
            if "userinfo" not in token:
                raise TokenRejected("no ID token")
            userinfo: dict[str, Any] = {}
            if metadata.get("userinfo_endpoint"):
                userinfo = dict(await oidc.userinfo(token=token))
                if userinfo.get("sub") != token["userinfo"]["sub"]:
                    raise TokenRejected("userinfo is about someone else")
        except httpx.HTTPError:
            return unavailable(request)
        except (OAuthError, TokenRejected, ValueError, KeyError):
            return message(
                request,
                "You are not signed in",
                "The answer from the sign-in service could not be accepted. Please try again.",
                400,
                retry=True,
            )
        id_claims = dict(token["userinfo"])
        store.delete(request.session.pop(SESSION_KEY, None))
        key = store.create(
            sub=id_claims["sub"],
            sid=id_claims.get("sid"),
            data={
                "id_token": token["id_token"],
                "id_claims": id_claims,
                "userinfo": userinfo,
                "access_token": token["access_token"],
                "refresh_token": token.get("refresh_token"),
                "expires_at": token.get("expires_at"),
                "scope": token.get("scope", settings.scope),
                "signed_in_at": time.time(),
                "refreshed_at": None,
            },
        )
        request.session[SESSION_KEY] = key
        request.session[CSRF_KEY] = secrets.token_urlsafe(32)  # a new one with the new session
        return RedirectResponse("/", status_code=303)

    async def refresh(request: Request) -> Response:
        if await checked_form(request) is None:
            return message(request, "Please try again", "The form had expired.", 400)
        key, data = current(request)
        if key is None or data is None or not data.get("refresh_token"):
            return RedirectResponse("/", status_code=303)
        try:
            token = await oidc.fetch_access_token(
                grant_type="refresh_token", refresh_token=data["refresh_token"]
            )
            if token.get("id_token"):
                await check_refreshed_id_token(oidc, token["id_token"], previous=data["id_claims"])
                data["id_token"] = token["id_token"]
            metadata = await oidc.load_server_metadata()
            if metadata.get("userinfo_endpoint"):
                data["userinfo"] = dict(await oidc.userinfo(token=token))
        except httpx.HTTPError:
            return unavailable(request)
        except (OAuthError, TokenRejected, ValueError, KeyError):
            store.delete(key)
            request.session.pop(SESSION_KEY, None)
            return message(
                request,
                "Your sign-in has ended",
                "Please sign in again to continue.",
                400,
                retry=True,
            )
        data.update(
            access_token=token["access_token"],
            # Rotation: each refresh returns a new refresh token; the old one is now spent.
            refresh_token=token.get("refresh_token", data["refresh_token"]),
            expires_at=token.get("expires_at"),
            refreshed_at=time.time(),
        )
        store.update(key, data)
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        if await checked_form(request) is None:
            return message(request, "Please try again", "The form had expired.", 400)
        key, data = current(request)
        store.delete(key)
        request.session.clear()
        try:
            metadata = await oidc.load_server_metadata()
        except (httpx.HTTPError, ValueError):
            metadata = {}
        if data is None or not metadata.get("end_session_endpoint"):
            return RedirectResponse("/signed-out", status_code=303)
        response: Response = await oidc.logout_redirect(
            request,
            post_logout_redirect_uri=settings.post_logout_redirect_uri,
            id_token_hint=data["id_token"],
            client_id=settings.client_id,
        )
        response.status_code = 303
        return response

    async def signed_out(request: Request) -> Response:
        if request.query_params.get("state"):
            with contextlib.suppress(OAuthError):  # the local session is gone either way
                await oidc.validate_logout_response(request)
        current(request)
        return message(
            request,
            "You have signed out",
            f"You are no longer signed in to {settings.name}.",
            signed_out=True,
        )

    async def backchannel_logout(request: Request) -> Response:
        headers = {"Cache-Control": "no-store"}
        form = await request.form()
        token = form.get("logout_token")
        try:
            if not isinstance(token, str):
                raise TokenRejected("no logout_token")
            claims = await check_logout_token(oidc, token)
            if not store.first_use_of_jti(str(claims["jti"]), float(claims["exp"]) + 60):
                raise TokenRejected("this logout token was already received")
        except httpx.HTTPError:
            return JSONResponse(
                {"error": "temporarily_unavailable"}, status_code=503, headers=headers
            )
        except TokenRejected as exc:
            return JSONResponse(
                {"error": "invalid_request", "error_description": str(exc)},
                status_code=400,
                headers=headers,
            )
        store.end(sid=claims.get("sid"), sub=claims.get("sub"))
        return Response(status_code=200, headers=headers)

    async def alive(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/login", login, methods=["GET"]),
            Route("/callback", callback, methods=["GET"]),
            Route("/refresh", refresh, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/signed-out", signed_out, methods=["GET"]),
            Route("/backchannel-logout", backchannel_logout, methods=["POST"]),
            Route("/health/alive", alive, methods=["GET"]),
            *auth.routes,
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders, issuer=settings.issuer),
            Middleware(
                SessionMiddleware,
                secret_key=settings.session_secret,
                session_cookie=f"{settings.slug.replace('-', '_')}_session",
                max_age=store.lifetime,
                same_site="lax",
                https_only=settings.secure_cookies,
            ),
        ],
    )
    app.state.settings = settings
    app.state.store = store
    app.state.oidc = oidc
    return app
