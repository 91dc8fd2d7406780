"""Who may use the admin console, and how an administrator signs in to it.

The console has no sign-in of its own. A page reads the single sign-on session; with none (or
one below `substantial`, or too old for a sensitive action) it starts an interaction whose
client is the console itself (`interactions.ADMIN_CONSOLE`) and sends the browser to the same
sign-in pages citizens use. They resume at `/admin/resume/<id>`, which checks the new session
and returns to the page asked for. A signed-in citizen who is not an administrator gets 403 on
every admin URL.

Administrators always sign in with a second factor (`substantial`). Every action (each POST
of the console, see `idp.admin.pages.admin_view`) also needs an authentication at most
`admin_reauth_seconds` old; an older one signs in again (`force_login`) before anything is
done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from idp.auth import assurance, console, interactions, sessions
from idp.db.models import SsoSession, User
from idp.i18n import N_
from idp.runtime import Runtime
from idp.templating import render

ADMIN_ACR = "substantial"
HOME = "/admin/"
CONSOLE = console.Console(
    client_id=interactions.ADMIN_CONSOLE,
    home=HOME,
    required_acr=ADMIN_ACR,
    cancelled_message=N_("You did not sign in to the administration console."),
)


@dataclass(frozen=True)
class Admin:
    """The signed-in administrator of a request."""

    user: User
    sso: SsoSession

    @property
    def actor(self) -> str:
        return f"admin:{self.user.username}"


def safe_return(path: str | None) -> str:
    """Only a path inside the console (never another site: `//host`, `/\\host`)."""
    return CONSOLE.safe_return(path)


def forbidden(request: Request) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": N_("Administrators only"),
            "message": N_(
                "This page is for the administrators of the service. Your account cannot use it."
            ),
        },
        status_code=403,
    )


def sign_in(
    db: Session, runtime: Runtime, request: Request, *, return_to: str, force_login: bool
) -> Response:
    """Send the browser to the sign-in pages, to come back to `return_to`."""
    return CONSOLE.sign_in(db, runtime, request, return_to=return_to, force_login=force_login)


def is_fresh(sso: SsoSession, runtime: Runtime, now: datetime | None = None) -> bool:
    return console.is_fresh(sso, runtime.settings.admin_reauth_seconds, now)


def require_admin(
    db: Session,
    runtime: Runtime,
    request: Request,
    *,
    return_to: str,
    fresh: bool = False,
) -> Admin | Response:
    """The administrator, or the response that gets one (sign in, step up, sign in again)
    or refuses a citizen (403)."""
    sso = sessions.current_session(db, request, runtime.settings)
    if sso is None:
        return sign_in(db, runtime, request, return_to=return_to, force_login=False)
    user = db.get(User, sso.user_id)
    if user is None or not user.is_admin:
        return forbidden(request)
    if not assurance.satisfies(sso.acr, ADMIN_ACR):
        return sign_in(db, runtime, request, return_to=return_to, force_login=False)
    if fresh and not is_fresh(sso, runtime):
        return sign_in(db, runtime, request, return_to=return_to, force_login=True)
    return Admin(user, sso)


def resume(db: Session, runtime: Runtime, request: Request) -> Response:
    """Back from the sign-in pages: to the page asked for, if the session now allows it."""

    def refuse(sso: SsoSession) -> Response | None:
        user = db.get(User, sso.user_id)
        return forbidden(request) if user is None or not user.is_admin else None

    return CONSOLE.resume(db, runtime, request, refuse=refuse)


def cancel(db: Session, request: Request) -> Response:
    return CONSOLE.cancel(db, request)
