"""Password reset by an emailed single-use, short-lived link.

The answer is the same whether or not the account exists, and the email leaves after the
response (so the time does not tell either). One account is sent at most one email a minute and
`password_reset_daily_limit` in 24 hours; beyond, the answer is the same and no email leaves
(nobody can flood a citizen's mailbox). The link sets a new password only: signing in still
takes the second factor. A reset ends every session and grant of the citizen, telling
the e-services (`idp.logout.ending.end_everything`), and lifts a lock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp import events, i18n
from idp.auth import flow, interactions, passwords, sessions
from idp.auth.newpassword import change_password, prepare_new_password, void_reset_links
from idp.auth.pages import expired, field, locale_of, page, runtime, with_error
from idp.auth.views import password_errors
from idp.csrf import verify_csrf
from idp.db.models import Interaction, PasswordReset, User
from idp.i18n import N_
from idp.logging import get_logger
from idp.logout.ending import end_everything
from idp.mail import Mail, Mailer, MailError
from idp.security import hash_secret, random_token
from idp.services.users import normalize_username
from idp.templating import render, render_text

log = get_logger("idp.auth.reset")
RESEND_AFTER = timedelta(seconds=60)
DAILY_WINDOW = timedelta(days=1)
TOKEN_LENGTH = 43


def reset_url(token: str) -> str:
    return f"/password/reset/{token}"


# Asking for a link ------------------------------------------------------------------------


async def forgot_page(request: Request) -> Response:
    return await run_in_threadpool(_forgot_page, request)


def _forgot_page(request: Request) -> Response:
    rt = runtime(request)
    with rt.db.transaction() as db:
        interaction = interactions.load(db, str(request.path_params["interaction_id"]), request)
        if interaction is None:
            return expired(request)
        locale = locale_of(request, interaction)
        _, _n = i18n.gettext_for(locale), i18n.ngettext_for(locale)
        minutes = rt.settings.password_reset_lifetime // 60
        errors = []
        if request.query_params.get("error") == "missing":
            errors.append(("username", _("Enter your username.")))
        if request.query_params.get("sent") == "1":
            return page(
                request,
                db,
                interaction,
                "signin/message.html",
                {
                    "title": N_("Check your email"),
                    "heading": _("Check your email"),
                    "paragraphs": [
                        _n(
                            "If this account exists and has an email address, we have sent "
                            "it a link to choose a new password. The link works once, for "
                            "%(minutes)s minute.",
                            "If this account exists and has an email address, we have sent "
                            "it a link to choose a new password. The link works once, for "
                            "%(minutes)s minutes.",
                            minutes,
                            minutes=minutes,
                        ),
                        _("No email? Check your spam folder, or contact the help desk."),
                    ],
                    "link": flow.url(interaction, "password"),
                    "link_text": _("Back to sign in"),
                },
            )
        return page(
            request,
            db,
            interaction,
            "signin/forgot.html",
            {
                "title": N_("Reset your password"),
                "errors": errors,
                "action": flow.url(interaction, "forgot"),
                "login_url": flow.url(interaction, "password"),
                "username": interaction.signin.get("username") or interaction.login_hint or "",
            },
        )


async def forgot_submit(request: Request) -> Response:
    form = await request.form()
    verify_csrf(request, form)
    return await run_in_threadpool(_forgot_submit, request, field(form, "username", 320).strip())


def _forgot_submit(request: Request, username: str) -> Response:
    rt = runtime(request)
    mail: Mail | None = None
    with rt.db.transaction() as db:
        interaction = interactions.load(db, str(request.path_params["interaction_id"]), request)
        if interaction is None:
            return expired(request)
        here = flow.url(interaction, "forgot")
        if not username:
            return with_error(here, "missing")
        # Locked (PostgreSQL): two simultaneous requests for one account cannot both pass
        # the limits below.
        user = db.scalar(
            select(User).where(User.username == normalize_username(username)).with_for_update()
        )
        mail = _prepare(db, request, interaction, user)
    response = flow.go(f"{here}?sent=1")
    if mail is not None:
        response.background = BackgroundTask(_send, rt.mailer, mail)
    return response


def _prepare(
    db: Session, request: Request, interaction: Interaction, user: User | None
) -> Mail | None:
    """Store a reset token and build its email, if the account can receive one."""
    rt = runtime(request)
    ip = sessions.client_ip(request)
    if user is None or user.disabled or not user.email:
        reason = "unknown_user" if user is None else "disabled" if user.disabled else "no_email"
        events.record(
            db,
            "auth.password_reset_requested",
            outcome="failure",
            user_id=user.id if user else None,
            client_id=interaction.client_id,
            ip=ip,
            reason=reason,
        )
        return None
    now = datetime.now(UTC)
    refusal = _over_limit(db, user.id, now, rt.settings.password_reset_daily_limit)
    if refusal is not None:
        events.record(
            db,
            "auth.password_reset_requested",
            outcome="failure",
            user_id=user.id,
            client_id=interaction.client_id,
            ip=ip,
            reason=refusal,
        )
        return None
    token = random_token(32)
    db.add(
        PasswordReset(
            token_hash=hash_secret(token),
            user_id=user.id,
            interaction_id=interaction.id,
            created_at=now,
            expires_at=now + timedelta(seconds=rt.settings.password_reset_lifetime),
        )
    )
    events.record(
        db, "auth.password_reset_requested", user_id=user.id, client_id=interaction.client_id, ip=ip
    )
    locale = locale_of(request, interaction)
    _ = i18n.gettext_for(locale)
    link = f"{rt.settings.issuer}{reset_url(token)}?{i18n.LANG_PARAM}={locale}"
    text = render_text(
        "email/password_reset.txt",
        {
            "username": user.username,
            "minutes": rt.settings.password_reset_lifetime // 60,
            "link": link,
        },
        locale=locale,
        zone=rt.settings.zone,
    )
    return Mail(to=user.email, subject=_("Reset your password"), text=text)


def _over_limit(db: Session, user_id: int, now: datetime, daily_limit: int) -> str | None:
    """Why no further email may go to this account now (`too_soon`, `daily_limit`), if so."""
    recent = db.execute(
        select(func.max(PasswordReset.created_at), func.count()).where(
            PasswordReset.user_id == user_id, PasswordReset.created_at > now - DAILY_WINDOW
        )
    ).one()
    latest, sent = recent
    if latest is not None and now - latest < RESEND_AFTER:
        return "too_soon"
    if sent >= daily_limit:
        return "daily_limit"
    return None


def _send(mailer: Mailer, mail: Mail) -> None:
    try:
        mailer.send(mail)
    except MailError as exc:
        log.warning("password reset email not sent", error=str(exc))


# Using the link ---------------------------------------------------------------------------


def _live_reset(db: Session, token: str) -> PasswordReset | None:
    if len(token) != TOKEN_LENGTH:
        return None
    reset = db.scalar(select(PasswordReset).where(PasswordReset.token_hash == hash_secret(token)))
    if reset is None or reset.used_at is not None:
        return None
    if datetime.now(UTC) >= reset.expires_at:
        return None
    return reset


def _link_expired(request: Request) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": N_("This link has expired"),
            "message": N_(
                "Password reset links work once and only for a short time. Go back to the "
                "e-service, choose to sign in and ask for a new link."
            ),
        },
        status_code=400,
    )


async def reset_page(request: Request) -> Response:
    return await run_in_threadpool(_reset_page, request)


def _reset_page(request: Request) -> Response:
    rt = runtime(request)
    token = str(request.path_params["token"])
    with rt.db.read() as db:
        reset = _live_reset(db, token)
        user = db.get(User, reset.user_id) if reset else None
        if reset is None or user is None or user.disabled:
            return _link_expired(request)
        _ = i18n.gettext_for(i18n.negotiate(request))
        context: dict[str, Any] = {
            "title": N_("Choose a new password"),
            "heading": _("Choose a new password"),
            "intro": _("Choose a new password for %(username)s.", username=user.username),
            "errors": password_errors(request, _),
            "action": reset_url(token),
            "username": user.username,
            "min_length": passwords.MIN_LENGTH,
            "recommended_length": passwords.RECOMMENDED_LENGTH,
        }
        return render(request, "signin/new_password.html", context)


async def reset_submit(request: Request) -> Response:
    form = await request.form()
    verify_csrf(request, form)
    return await run_in_threadpool(
        _reset_submit, request, field(form, "password"), field(form, "confirm")
    )


def _reset_submit(request: Request, password: str, confirm: str) -> Response:
    rt = runtime(request)
    token = str(request.path_params["token"])
    with rt.db.read() as db:
        reset = _live_reset(db, token)
        user = db.get(User, reset.user_id) if reset else None
    if reset is None or user is None or user.disabled:
        return _link_expired(request)
    checked = prepare_new_password(user, password, confirm)  # argon2id: no transaction open
    if checked.hash is None:
        return with_error(reset_url(token), str(checked.problem))
    with rt.db.transaction() as db:
        reset = _live_reset(db, token)
        user = db.get(User, reset.user_id) if reset else None
        if reset is None or user is None or user.disabled:
            return _link_expired(request)
        if not void_reset_links(db, user.id):  # another tab used it just now
            return _link_expired(request)
        change_password(db, user, checked.hash, reason="reset")
        ended = end_everything(db, user.id, "password_reset")
        rt.throttle.unlock(db, user.id)
        events.record(
            db,
            "auth.password_reset",
            user_id=user.id,
            ip=sessions.client_ip(request),
            sessions_ended=ended,
        )
        interaction_id = reset.interaction_id
    target = "/password/reset-done"
    if interaction_id:
        target += f"?next={interaction_id}"
    response = flow.go(target)
    sessions.clear_session_cookie(response, rt.settings)
    return response


async def reset_done(request: Request) -> Response:
    _ = i18n.gettext_for(i18n.negotiate(request))
    next_id = request.query_params.get("next", "")
    link = (
        interactions.login_url(next_id) + "?changed=1"
        if next_id.replace("-", "").replace("_", "").isalnum() and len(next_id) <= 64
        else None
    )
    return render(
        request,
        "signin/message.html",
        {
            "title": N_("Your password has been changed"),
            "heading": _("Your password has been changed"),
            "paragraphs": [
                _(
                    "You have been signed out everywhere. Sign in with your new password; "
                    "you will still need your authenticator app or a recovery code."
                ),
                _("If you did not ask for this change, contact the help desk at once."),
            ],
            "link": link,
            "link_text": _("Continue signing in"),
        },
    )
