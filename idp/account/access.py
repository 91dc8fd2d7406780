"""Who is signed in to the account pages, and how a citizen signs in to them.

Like the admin console, the account pages have no sign-in of their own: with no single sign-on
session they start an interaction whose client is the account itself
(`interactions.ACCOUNT`) and send the browser to the same sign-in pages, which resume at
`/account/resume/<id>` and come back to the page asked for. Changing a second factor or the
recovery codes needs an authentication at most `account_reauth_seconds` old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp import i18n
from idp.auth import interactions, sessions
from idp.db.models import Interaction, SsoSession, User
from idp.i18n import N_
from idp.runtime import Runtime
from idp.templating import render

HOME = "/account"


@dataclass(frozen=True)
class Citizen:
    """The signed-in citizen of a request, and their session."""

    user: User
    sso: SsoSession


def safe_return(path: str | None) -> str:
    """Only a path inside the account pages (never another site)."""
    if (
        not path
        or not (path == HOME or path.startswith(HOME + "/"))
        or "//" in path
        or "\\" in path
        or any(ord(ch) < 33 for ch in path)
        or len(path) > 1000
    ):
        return HOME
    return path


def sign_in(
    db: Session, runtime: Runtime, request: Request, *, return_to: str, force_login: bool
) -> Response:
    interaction = interactions.start(
        db,
        client_id=interactions.ACCOUNT,
        params={"return_to": safe_return(return_to)},
        force_login=force_login,
        required_acr=None,
        login_hint=None,
        ui_locales=i18n.negotiate(request),
        settings=runtime.settings,
    )
    return interactions.redirect_to_login(interaction, runtime.settings)


def is_fresh(sso: SsoSession, runtime: Runtime) -> bool:
    age = datetime.now(UTC) - sso.auth_time
    return age <= timedelta(seconds=runtime.settings.account_reauth_seconds)


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


def _account_interaction(db: Session, request: Request) -> Interaction | None:
    interaction = interactions.load(db, str(request.path_params["interaction_id"]), request)
    if interaction is None or interaction.client_id != interactions.ACCOUNT:
        return None
    return interaction


def resume(db: Session, runtime: Runtime, request: Request) -> Response:
    """Back from the sign-in pages: to the page asked for."""
    interaction = _account_interaction(db, request)
    if interaction is None:
        return RedirectResponse(HOME, status_code=303)
    return_to = safe_return(str(interaction.params.get("return_to") or HOME))
    sso = sessions.current_session(db, request, runtime.settings)
    if (
        sso is None
        or sso.user_id != interaction.user_id
        or (interaction.force_login and sso.auth_time < interaction.created_at)
    ):
        return interactions.redirect_to_login(interaction, runtime.settings)
    interactions.complete(db, interaction)
    return RedirectResponse(return_to, status_code=303, headers={"Cache-Control": "no-store"})


def cancel(db: Session, request: Request) -> Response:
    interaction = _account_interaction(db, request)
    if interaction is not None:
        interactions.complete(db, interaction)
    return render(
        request,
        "error.html",
        {
            "title": N_("Sign-in cancelled"),
            "message": N_("You did not sign in to your account."),
            "link": HOME,
            "link_text": N_("Sign in"),
        },
    )
