"""Who is signed in to the account pages, and how a citizen signs in to them.

Like the admin console, the account pages have no sign-in of their own: with no single sign-on
session they start an interaction whose client is the account itself
(`interactions.ACCOUNT`) and send the browser to the same sign-in pages, which resume at
`/account/resume/<id>` and come back to the page asked for (`idp.auth.console`). Changing a
second factor or the recovery codes needs an authentication at most `account_reauth_seconds` old.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from idp.auth import console, interactions, sessions
from idp.db.models import SsoSession, User
from idp.i18n import N_
from idp.runtime import Runtime

HOME = "/account"
CONSOLE = console.Console(
    client_id=interactions.ACCOUNT,
    home=HOME,
    required_acr=None,
    cancelled_message=N_("You did not sign in to your account."),
)


@dataclass(frozen=True)
class Citizen:
    """The signed-in citizen of a request, and their session."""

    user: User
    sso: SsoSession


def safe_return(path: str | None) -> str:
    """Only a path inside the account pages (never another site)."""
    return CONSOLE.safe_return(path)


def sign_in(
    db: Session, runtime: Runtime, request: Request, *, return_to: str, force_login: bool
) -> Response:
    return CONSOLE.sign_in(db, runtime, request, return_to=return_to, force_login=force_login)


def is_fresh(sso: SsoSession, runtime: Runtime) -> bool:
    return console.is_fresh(sso, runtime.settings.account_reauth_seconds)


def require_citizen(
    db: Session, runtime: Runtime, request: Request, *, return_to: str, fresh: bool = False
) -> Citizen | Response:
    """The signed-in citizen, or the response that signs them in (again)."""
    sso = sessions.current_session(db, request, runtime.settings)
    if sso is None:
        return sign_in(db, runtime, request, return_to=return_to, force_login=False)
    user = db.get(User, sso.user_id)
    if user is None:
        return sign_in(db, runtime, request, return_to=return_to, force_login=False)
    if fresh and not is_fresh(sso, runtime):
        return sign_in(db, runtime, request, return_to=return_to, force_login=True)
    return Citizen(user, sso)


def resume(db: Session, runtime: Runtime, request: Request) -> Response:
    """Back from the sign-in pages: to the page asked for."""
    return CONSOLE.resume(db, runtime, request)


def cancel(db: Session, request: Request) -> Response:
    return CONSOLE.cancel(db, request)
