"""The `end_session_endpoint` (`/logout`, GET and POST) and its pages.

- `/logout`: an e-service sends the citizen here. With an `id_token_hint` issued under the
  browser's current session, the session ends at once; otherwise, if the browser has a session,
  the citizen is asked to confirm (nobody can sign a citizen out from a third-party page).
  Without a session there is nothing to end: the browser goes back to the e-service only if an
  `id_token_hint` proves which one asked, else it stays on our signed-out page (no open
  redirect for whoever writes a `client_id` into a link).
- `/logout/confirm` (POST, CSRF-protected): the citizen's answer.
- `/logout/done`: our signed-out page; it loads the e-services' front-channel logout pages in
  hidden frames, then continues to the e-service's post-logout redirect, if there is one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.auth import sessions
from idp.csrf import verify_csrf
from idp.i18n import N_, negotiate
from idp.logout import delivery, pages
from idp.logout import request as logout_request
from idp.logout.ending import Ended, log_out
from idp.oauth.server import read_input
from idp.runtime import Runtime
from idp.templating import render

DONE = "/logout/done"
CONFIRM = "/logout/confirm"
CARRIED = ("client_id", "post_logout_redirect_uri", "state", "ui_locales")
NO_STORE = {"Cache-Control": "no-store"}
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


# What the views share ------------------------------------------------------------------------


def _finish(
    runtime: Runtime,
    parsed: logout_request.LogoutRequest,
    ended: Ended | None,
    locale: str,
    *,
    confirmed: bool,
) -> Response:
    """Where the browser goes after a logout (or when there was nothing to end); `confirmed`
    when the citizen asked for it on our confirmation page."""
    target = parsed.redirect_target(confirmed=confirmed)
    frames = ended.frontchannel if ended is not None else []
    if target is not None and not frames:
        return RedirectResponse(target, status_code=303, headers=NO_STORE)
    outcome = pages.Outcome(
        frontchannel=frames, redirect=target, service=parsed.service_name, locale=locale
    )
    sealed = pages.seal(runtime.settings, outcome)
    return RedirectResponse(f"{DONE}?{urlencode({'o': sealed})}", status_code=303, headers=NO_STORE)


def _confirm_page(request: Request, parsed: logout_request.LogoutRequest, locale: str) -> Response:
    carried = {
        "client_id": parsed.client_id,
        "post_logout_redirect_uri": parsed.redirect_uri,
        "state": parsed.state if parsed.redirect_uri else None,
        "ui_locales": parsed.ui_locales,
    }
    return render(
        request,
        "logout/confirm.html",
        {
            "title": N_("Sign out"),
            "service": parsed.service_name,
            "carried": [(name, value) for name, value in carried.items() if value],
            "action": CONFIRM,
        },
        locale=locale,
    )


Work = Callable[[Session, Runtime], tuple[Response, Ended | None]]


async def _run(request: Request, work: Work) -> Response:
    """Run `work` in one transaction; then clear the cookie and tell the e-services (after
    the commit and after the response is sent: nothing waits for them)."""
    runtime = _runtime(request)

    def in_transaction() -> tuple[Response, Ended | None]:
        with runtime.db.transaction() as db:
            return work(db, runtime)

    response, ended = await run_in_threadpool(in_transaction)
    if ended is not None:
        sessions.clear_session_cookie(response, runtime.settings)
        if ended.deliveries:
            response.background = BackgroundTask(delivery.deliver, runtime, ended.deliveries)
    return response


def _bad_request(request: Request) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": N_("This sign-out request cannot be accepted"),
            "message": N_("The request is malformed. You can still sign out here."),
            "link": DONE,
            "link_text": N_("Continue"),
        },
        status_code=400,
    )


# Views ---------------------------------------------------------------------------------------


async def end_session(request: Request) -> Response:
    """`end_session_endpoint` (GET or POST)."""
    source = await read_input(request)
    if not source.form_ok:
        return _bad_request(request)

    def work(db: Session, runtime: Runtime) -> tuple[Response, Ended | None]:
        settings = runtime.settings
        parsed = logout_request.parse(db, runtime.keyring, settings.issuer, source.items)
        locale = negotiate(request, parsed.ui_locales)
        sso = sessions.current_session(db, request, settings)
        if sso is not None and not parsed.names_session(db, sso):
            return _confirm_page(request, parsed, locale), None
        ended = (
            log_out(db, sso, issuer=settings.issuer, initiator=parsed.client_id)
            if sso is not None
            else Ended()
        )
        return _finish(runtime, parsed, ended, locale, confirmed=False), ended

    return await _run(request, work)


async def confirm(request: Request) -> Response:
    """The citizen's answer on the confirmation page (or the sign-out button of our page, or
    "Sign out" on the account's pages)."""
    form = await request.form()
    verify_csrf(request, form)
    items = [(k, v) for k, v in form.multi_items() if k in CARRIED and isinstance(v, str)]
    sign_out = form.get("decision") == "logout"

    def work(db: Session, runtime: Runtime) -> tuple[Response, Ended | None]:
        settings = runtime.settings
        parsed = logout_request.parse(db, runtime.keyring, settings.issuer, items)
        locale = negotiate(request, parsed.ui_locales)
        if not sign_out:
            outcome = pages.seal(settings, pages.Outcome(locale=locale))
            done = f"{DONE}?{urlencode({'o': outcome})}"
            return RedirectResponse(done, status_code=303, headers=NO_STORE), None
        sso = sessions.current_session(db, request, settings)
        ended = (
            log_out(db, sso, issuer=settings.issuer, initiator=parsed.client_id)
            if sso is not None
            else Ended()
        )
        return _finish(runtime, parsed, ended, locale, confirmed=True), ended

    return await _run(request, work)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()
    return origin if _ORIGIN.fullmatch(origin) else None


def _policy(origins: list[str]) -> str:
    """The provider's usual policy, with frames allowed from exactly these origins."""
    frames = " ".join(sorted(set(origins))) or "'none'"
    return (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self' https: http://localhost:* "
        f"http://127.0.0.1:*; frame-src {frames}"
    )


async def done(request: Request) -> Response:
    """Our signed-out page (or, if the browser still has a session, a way to end it)."""
    runtime = _runtime(request)
    outcome = pages.unseal(runtime.settings, request.query_params.get("o"))

    def signed_in() -> bool:
        with runtime.db.transaction() as db:
            return sessions.current_session(db, request, runtime.settings) is not None

    still = await run_in_threadpool(signed_in)
    frames = []
    if outcome is not None and not still:
        frames = [(item, _origin(item.url)) for item in outcome.frontchannel]
        frames = [(item, origin) for item, origin in frames if origin]
    continue_url = outcome.redirect if outcome is not None and not still else None
    response = render(
        request,
        "logout/done.html",
        {
            "title": N_("You are still signed in") if still else N_("You have signed out"),
            "signed_out": not still,
            "frames": [item for item, _ in frames],
            "continue_url": continue_url,
            "service": outcome.service if outcome is not None else None,
            "action": CONFIRM,
        },
        locale=negotiate(request, outcome.locale if outcome is not None else None),
    )
    response.headers["Content-Security-Policy"] = _policy([o for _, o in frames if o])
    return response
