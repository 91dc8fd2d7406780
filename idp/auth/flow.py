"""The steps of signing in for one interaction, and how it ends.

Progress lives on the interaction (who, which factors passed, pages still to show), so a
half-finished sign-in yields nothing but that row: the SSO session is created only at the end,
once every required step is done (NIST 800-63B §2.2, ASVS 6.3.2).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp import events
from idp.auth import assurance, interactions, sessions
from idp.config import Settings
from idp.db.models import Client, Interaction, SsoSession, User

Step = Literal["password", "totp", "enrol", "recovery_codes", "new_password", "done"]

PATHS: dict[str, str] = {
    "password": "",
    "totp": "/totp",
    "recovery": "/recovery",
    "email": "/email",
    "email_send": "/email/send",
    "enrol": "/enrol",
    "recovery_codes": "/recovery-codes",
    "new_password": "/new-password",
    "forgot": "/forgot",
}


def url(interaction: Interaction | str, page: str) -> str:
    return interactions.login_url(interaction) + PATHS[page]


def has_totp(user: User) -> bool:
    return user.totp is not None and user.totp.confirmed_at is not None


def signed_in_user(db: Session, interaction: Interaction) -> User | None:
    """The citizen who passed the password step of this interaction (and is still allowed)."""
    if interaction.user_id is None or "pwd" not in interaction.amr:
        return None
    user = db.get(User, interaction.user_id)
    if user is None or user.disabled:
        return None
    return user


def next_step(interaction: Interaction, user: User | None, settings: Settings) -> Step:
    """What the citizen must do next for this interaction."""
    if user is None or "pwd" not in interaction.amr:
        return "password"
    amr = interaction.amr
    second_factor_needed = (
        settings.require_second_factor
        or has_totp(user)
        or not assurance.satisfies(assurance.acr_for_amr(amr), interaction.required_acr)
    )
    if second_factor_needed and "otp" not in amr:
        return "totp" if has_totp(user) else "enrol"
    if interaction.signin.get("show_codes"):
        return "recovery_codes"
    if user.must_change_password:
        return "new_password"
    return "done"


def set_signin(interaction: Interaction, **values: object) -> None:
    """Update the sign-in bookkeeping (a new dict, so the JSON column is saved)."""
    updated = dict(interaction.signin or {})
    for key, value in values.items():
        if value is None:
            updated.pop(key, None)
        else:
            updated[key] = value
    interaction.signin = updated


def factor_passed(db: Session, interaction: Interaction, user: User, method: str) -> None:
    """Record a factor passed in this interaction."""
    interactions.record_progress(
        db, interaction, user_id=user.id, amr=assurance.amr_with(interaction.amr, method)
    )
    set_signin(interaction, fresh=True)


def adopt_session(db: Session, interaction: Interaction, sso: SsoSession) -> None:
    """Start from what the current session already proves (step-up asks only what is missing)."""
    interactions.record_progress(db, interaction, user_id=sso.user_id, amr=list(sso.amr))
    set_signin(interaction, adopted=sso.sid)


def client_name(db: Session, interaction: Interaction) -> str:
    if interaction.client_id == interactions.ADMIN_CONSOLE:
        return interactions.ADMIN_CONSOLE_NAME
    if interaction.client_id == interactions.ACCOUNT:
        return interactions.ACCOUNT_NAME
    client = db.query(Client).filter(Client.client_id == interaction.client_id).one_or_none()
    return client.name if client is not None else interaction.client_id


def go(location: str) -> Response:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def goto_step(interaction: Interaction, step: Step) -> str:
    if step == "done":
        return interactions.resume_url(interaction)
    return url(interaction, step)


def finish(
    db: Session,
    interaction: Interaction,
    user: User,
    request: Request,
    settings: Settings,
) -> tuple[Response, bool]:
    """Every step done: a new SSO session (unless the current one already suffices), then back
    to `/authorize/resume/<id>`. Returns the response and whether the request can be met."""
    acr = assurance.acr_for_amr(interaction.amr)
    if not assurance.satisfies(acr, interaction.required_acr):
        return go(interactions.cancel_url(interaction)), False
    current = sessions.current_session(db, request, settings)
    if not interaction.signin.get("fresh"):
        # Nothing was proven in this interaction just now: only a live session of the same
        # citizen lets it through; otherwise start again.
        if (
            current is not None
            and current.user_id == user.id
            and (not interaction.force_login or current.auth_time >= interaction.created_at)
        ):
            return go(interactions.resume_url(interaction)), True
        interactions.record_progress(db, interaction, user_id=user.id, amr=[])
        set_signin(interaction, adopted=None)
        return go(url(interaction, "password")), False
    sso, value = sessions.create_session(
        db,
        user=user,
        acr=acr,
        amr=interaction.amr,
        auth_time=datetime.now(UTC),
        request=request,
        settings=settings,
        previous=current,
    )
    set_signin(interaction, sid=sso.sid, fresh=None)
    events.record(
        db,
        "auth.signed_in",
        user_id=user.id,
        client_id=interaction.client_id,
        ip=sessions.client_ip(request),
        acr=acr,
        amr=list(interaction.amr),
        sid=sso.sid,
        step_up=bool(interaction.signin.get("adopted")),
    )
    response = go(interactions.resume_url(interaction))
    sessions.set_session_cookie(response, value, settings)
    return response, True
