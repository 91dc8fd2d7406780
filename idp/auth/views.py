"""The sign-in pages: password, second factor, enrolment, recovery codes, new password.

Each view reads the request, runs one transaction in the thread pool and answers a page (GET)
or a 303 (POST). The rules live in `flow`, the factors in their own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp import events
from idp.auth import email_otp, flow, interactions, passwords, recovery, sessions, totp
from idp.auth import throttle as throttle_module
from idp.auth.newpassword import PASSWORD_ERRORS, change_password, prepare_new_password
from idp.auth.pages import (
    error_code,
    expired,
    field,
    locale_of,
    page,
    runtime,
    translator,
    wait_seconds,
    with_error,
)
from idp.csrf import verify_csrf
from idp.db.models import Interaction, User
from idp.i18n import N_, Message, N_n
from idp.mail import MailError
from idp.services.users import normalize_username

# What the throttle refused, told as it is: it counts the failed attempts (wrong passwords and
# wrong codes alike) of the account, and of the network address.
IP_LIMITED = N_n(
    "Too many attempts from your network. Wait %(seconds)s second and try again.",
    "Too many attempts from your network. Wait %(seconds)s seconds and try again.",
    "seconds",
)
ACCOUNT_THROTTLE_ERRORS: dict[str, Message] = {
    "ip_limited": IP_LIMITED,
    "throttled": N_n(
        "Too many failed attempts to sign in to this account. Wait %(seconds)s second and "
        "try again.",
        "Too many failed attempts to sign in to this account. Wait %(seconds)s seconds and "
        "try again.",
        "seconds",
    ),
    "locked": N_(
        "Too many failed attempts to sign in to this account, so signing in to it is paused. "
        "Try again later."
    ),
}
CREDENTIALS_ERRORS: dict[str, Message] = {
    # The same answer for an unknown username, a wrong password and an account whose
    # sign-in is paused (docs/security.md, "No enumeration"): true of each of them.
    "credentials": N_(
        "We could not sign you in with this username and password. Check them and try "
        "again. After several failed attempts, signing in to an account is paused for a "
        "while, even with the right password."
    ),
    "missing": N_("Enter your username and your password."),
    "ip_limited": IP_LIMITED,
}
CODE_ERRORS: dict[str, Message] = {
    "code": N_("The code is not correct or has already been used. Enter the code shown now."),
    "missing": N_("Enter the code."),
    "format": totp.MALFORMED,
    **ACCOUNT_THROTTLE_ERRORS,
}
RECOVERY_ERRORS: dict[str, Message] = {
    **CODE_ERRORS,
    "code": N_("This recovery code is not correct or has already been used."),
    "format": recovery.MALFORMED,
}
EMAIL_ERRORS: dict[str, Message] = {
    **CODE_ERRORS,
    "code": N_(
        "The code is not correct or has expired. Check the latest email or ask for a new code."
    ),
    "format": email_otp.MALFORMED,
    "not_sent": N_("Ask for a code first."),
    "mail_failed": N_("We could not send the email just now. Try again later or use another way."),
    "cooldown": N_n(
        "A code was sent moments ago. You can ask for a new one in %(seconds)s second.",
        "A code was sent moments ago. You can ask for a new one in %(seconds)s seconds.",
        "seconds",
    ),
}
ACCESS_ERRORS = {
    "unsupported_acr": N_(
        "This e-service asks for a level of assurance this sign-in cannot provide yet."
    ),
}


# Loading ----------------------------------------------------------------------------------


def _load(db: Session, request: Request) -> Interaction | None:
    return interactions.load(db, str(request.path_params["interaction_id"]), request)


SECOND_FACTOR = "second_factor"  # any of the code pages: app, recovery code, email


def _step(db: Session, request: Request, name: str) -> tuple[Interaction, User] | Response:
    """The interaction and citizen at step `name`, or where the browser belongs instead:
    the expired page, the password page (no one signed in) or the step that comes next."""
    interaction = _load(db, request)
    if interaction is None:
        return expired(request)
    user = flow.signed_in_user(db, interaction)
    if user is None:
        return flow.go(flow.url(interaction, "password"))
    if name == SECOND_FACTOR:
        here = "otp" not in interaction.amr and flow.has_totp(user)
    else:
        here = flow.next_step(interaction, user, runtime(request).settings) == name
    if not here:
        return _advance(db, interaction, user, request)
    return interaction, user


StepView = Callable[[Session, Request, Interaction, User], Response]


async def _at_step(request: Request, name: str, view: StepView) -> Response:
    """Answer with `view` at step `name`, in one transaction in the thread pool."""
    return await run_in_threadpool(_run_step, request, name, view)


def _run_step(request: Request, name: str, view: StepView) -> Response:
    with runtime(request).db.transaction() as db:
        at = _step(db, request, name)
        if isinstance(at, Response):
            return at
        return view(db, request, *at)


def _advance(db: Session, interaction: Interaction, user: User, request: Request) -> Response:
    """Send the citizen to the next step, or finish and resume the authorization request."""
    settings = runtime(request).settings
    step = flow.next_step(interaction, user, settings)
    if step != "done":
        return flow.go(flow.goto_step(interaction, step))
    response, ok = flow.finish(db, interaction, user, request, settings)
    if ok:
        runtime(request).throttle.record_success(
            db, user_id=user.id, ip=sessions.client_ip(request)
        )
    return response


def _event(
    db: Session,
    request: Request,
    interaction: Interaction,
    type: str,
    *,
    user_id: int | None,
    outcome: str = "success",
    reason: str | None = None,
) -> None:
    data: dict[str, Any] = {"interaction": interaction.id}
    if reason:
        data["reason"] = reason
    events.record(
        db,
        type,
        outcome=outcome,
        user_id=user_id,
        client_id=interaction.client_id,
        ip=sessions.client_ip(request),
        request_id=getattr(request.state, "request_id", None),
        **data,
    )


# Password ---------------------------------------------------------------------------------


async def password_page(request: Request) -> Response:
    return await run_in_threadpool(_password_page, request)


def _password_page(request: Request) -> Response:
    rt = runtime(request)
    with rt.db.transaction() as db:
        interaction = _load(db, request)
        if interaction is None:
            return expired(request)
        if interaction.required_acr == "high":
            return _unsupported(db, request, interaction)
        user = flow.signed_in_user(db, interaction)
        if user is None and not interaction.force_login and interaction.user_id is None:
            sso = sessions.current_session(db, request, rt.settings)
            if sso is not None:
                flow.adopt_session(db, interaction, sso)
                user = flow.signed_in_user(db, interaction)
        if user is not None:
            return _advance(db, interaction, user, request)
        _ = translator(request, interaction)
        code = error_code(request, CREDENTIALS_ERRORS)
        errors = []
        if code:
            message = _(CREDENTIALS_ERRORS[code], seconds=wait_seconds(request))
            errors.append(("password" if code != "missing" else "username", message))
        return page(
            request,
            db,
            interaction,
            "signin/password.html",
            {
                "title": N_("Sign in"),
                "errors": errors,
                "notice": _("Your password has been changed. Sign in with it.")
                if request.query_params.get("changed") == "1"
                else None,
                "action": flow.url(interaction, "password"),
                "forgot_url": flow.url(interaction, "forgot"),
                "username": interaction.signin.get("username") or interaction.login_hint or "",
            },
        )


def _unsupported(db: Session, request: Request, interaction: Interaction) -> Response:
    return page(
        request,
        db,
        interaction,
        "error.html",
        {
            "title": N_("This sign-in is not available"),
            "message": ACCESS_ERRORS["unsupported_acr"],
            "link": interactions.cancel_url(interaction),
            "link_text": N_("Go back to the e-service"),
        },
        status_code=400,
    )


async def password_submit(request: Request) -> Response:
    form = await request.form()
    verify_csrf(request, form)
    username = field(form, "username", 320).strip()
    password = field(form, "password")
    return await run_in_threadpool(_password_submit, request, username, password)


def _password_submit(request: Request, username: str, password: str) -> Response:
    """Three short steps, so that no transaction is open while argon2id works (tens of
    milliseconds of one core): read who signs in and whether they may try now; verify the
    password with nothing held; record the outcome in one short write transaction."""
    rt = runtime(request)
    ip = sessions.client_ip(request)
    account: Any = None
    verdict = throttle_module.ALLOWED
    verified_hash = rehashed = None
    if username and password:
        with rt.db.read() as db:
            if _load(db, request) is None:
                return expired(request)
            account = db.execute(
                select(User.id, User.password_hash).where(
                    User.username == normalize_username(username)
                )
            ).one_or_none()
            verdict = rt.throttle.check(db, user_id=account.id if account else None, ip=ip)
        stored = account.password_hash if account is not None and verdict.allowed else None
        if passwords.verify_password(password, stored):  # the same time for everyone
            verified_hash = stored
            if stored and passwords.needs_rehash(stored):
                rehashed = passwords.hash_password(password)
    with rt.db.transaction() as db:
        answer = _record_password(
            db,
            request=request,
            username=username,
            password_given=bool(password),
            account_id=account.id if account is not None else None,
            verdict=verdict,
            verified_hash=verified_hash,
            rehashed=rehashed,
        )
    return answer if answer is not None else expired(request)


def _record_password(
    db: Session,
    *,
    request: Request,
    username: str,
    password_given: bool,
    account_id: int | None,
    verdict: throttle_module.Verdict,
    verified_hash: str | None,
    rehashed: str | None,
) -> Response | None:
    """The outcome of a password attempt, written in one transaction (None: the sign-in
    expired meanwhile)."""
    rt = runtime(request)
    interaction = _load(db, request)
    if interaction is None:
        return None
    here = flow.url(interaction, "password")
    flow.set_signin(interaction, username=username or None)
    if not username or not password_given:
        return with_error(here, "missing")
    ip = sessions.client_ip(request)
    user = db.get(User, account_id) if account_id is not None else None
    if verdict.allowed and verified_hash is not None:
        # Simultaneous failures may have locked the account while the password was checked.
        verdict = rt.throttle.check(db, user_id=account_id, ip=ip)
    failed = partial(
        _event, db, request, interaction, "auth.password", user_id=account_id, outcome="failure"
    )
    if not verdict.allowed:
        failed(reason=verdict.reason)
        if verdict.reason == "ip_limited":
            return with_error(here, "ip_limited", wait=verdict.retry_after or 0)
        return with_error(here, "credentials")
    # A password changed while this one was being checked does not count as verified.
    valid = user is not None and verified_hash is not None and user.password_hash == verified_hash
    if user is None or not valid or user.disabled:
        reason = (
            "unknown_user"
            if user is None
            else "wrong_password"
            if not valid
            else "account_disabled"
        )
        rt.throttle.record_failure(db, user_id=account_id, ip=ip)
        failed(reason=reason)
        return with_error(here, "credentials")
    if rehashed is not None:
        user.password_hash = rehashed
    if interaction.user_id not in (None, user.id):
        interaction.amr = []  # someone else signs in: start over
    interaction.user_id = user.id
    flow.set_signin(interaction, adopted=None)
    flow.factor_passed(db, interaction, user, "pwd")
    _event(db, request, interaction, "auth.password", user_id=user.id)
    return _advance(db, interaction, user, request)


# Second factor ----------------------------------------------------------------------------


def _factor_context(
    db: Session, interaction: Interaction, user: User, current: str
) -> dict[str, Any]:
    return {
        "current": current,
        "totp_url": flow.url(interaction, "totp") if flow.has_totp(user) else None,
        "recovery_url": flow.url(interaction, "recovery"),
        "email_available": bool(user.email),
        "email_send_url": flow.url(interaction, "email_send"),
    }


async def totp_page(request: Request) -> Response:
    return await _at_step(request, SECOND_FACTOR, partial(_code_page, kind="totp"))


async def recovery_page(request: Request) -> Response:
    return await _at_step(request, SECOND_FACTOR, partial(_code_page, kind="recovery"))


async def email_page(request: Request) -> Response:
    return await _at_step(request, SECOND_FACTOR, partial(_code_page, kind="email"))


TEMPLATES = {
    "totp": "signin/totp.html",
    "recovery": "signin/recovery.html",
    "email": "signin/email.html",
}
TITLES = {
    "totp": N_("Enter the code from your authenticator app"),
    "recovery": N_("Enter a recovery code"),
    "email": N_("Enter the code we emailed you"),
}
ERRORS = {"totp": CODE_ERRORS, "recovery": RECOVERY_ERRORS, "email": EMAIL_ERRORS}


def _code_page(
    db: Session, request: Request, interaction: Interaction, user: User, *, kind: str
) -> Response:
    _ = translator(request, interaction)
    known = ERRORS[kind]
    code = error_code(request, known)
    errors = [("code", _(known[code], seconds=wait_seconds(request)))] if code else []
    context = {
        "title": TITLES[kind],
        "errors": errors,
        "action": flow.url(interaction, kind),
        **_factor_context(db, interaction, user, kind),
    }
    if kind == "email":
        sent = interaction.signin.get("email_sent_to")
        context["sent_to"] = sent
        context["minutes"] = int(email_otp.LIFETIME.total_seconds() // 60)
        context["resend_wait"] = wait_seconds(request) if code == "cooldown" else 0
    return page(request, db, interaction, TEMPLATES[kind], context)


async def totp_submit(request: Request) -> Response:
    return await _code_submit(request, "totp")


async def recovery_submit(request: Request) -> Response:
    return await _code_submit(request, "recovery")


async def email_submit(request: Request) -> Response:
    return await _code_submit(request, "email")


async def _code_submit(request: Request, kind: str) -> Response:
    form = await request.form()
    verify_csrf(request, form)
    return await _at_step(
        request, SECOND_FACTOR, partial(_check_code, kind=kind, code=field(form, "code", 64))
    )


EVENT_TYPES = {"totp": "auth.otp", "recovery": "auth.recovery", "email": "auth.email_otp"}
WELL_FORMED = {
    "totp": totp.well_formed,
    "recovery": recovery.well_formed,
    "email": email_otp.well_formed,
}


def _refused(here: str, verdict: throttle_module.Verdict) -> Response:
    """Back to a code page when the throttle refused the attempt, saying what it counted (a
    key of `ACCOUNT_THROTTLE_ERRORS`): the network's failed attempts, or the account's, which
    may have been wrong passwords as much as wrong codes. The citizen has passed the password
    step here, so the account's state may be told."""
    if verdict.reason == "ip_limited":
        return with_error(here, "ip_limited", wait=verdict.retry_after or 0)
    if verdict.locked:
        return with_error(here, "locked")
    return with_error(here, "throttled", wait=verdict.retry_after or 0)


def _check_code(
    db: Session, request: Request, interaction: Interaction, user: User, *, kind: str, code: str
) -> Response:
    rt = runtime(request)
    here = flow.url(interaction, kind)
    if not code.strip():
        return with_error(here, "missing")
    if kind == "email" and not interaction.signin.get("email_sent_to"):
        return with_error(here, "not_sent")
    if not WELL_FORMED[kind](code):  # a typing mistake, not a guess: neither counted nor recorded
        return with_error(here, "format")
    ip = sessions.client_ip(request)
    event_type = EVENT_TYPES[kind]
    verdict = rt.throttle.check(db, user_id=user.id, ip=ip)
    if not verdict.allowed:
        _event(
            db,
            request,
            interaction,
            event_type,
            user_id=user.id,
            outcome="failure",
            reason=verdict.reason,
        )
        return _refused(here, verdict)
    if kind == "totp":
        assert user.totp is not None
        valid = totp.verify_and_consume(db, user.totp, code, rt.secrets)
    elif kind == "recovery":
        valid = recovery.consume(db, user.id, code)
    else:
        valid = email_otp.verify(db, user.id, code, interaction_id=interaction.id)
    if not valid:
        rt.throttle.record_failure(db, user_id=user.id, ip=ip)
        _event(
            db,
            request,
            interaction,
            event_type,
            user_id=user.id,
            outcome="failure",
            reason="invalid_code",
        )
        return with_error(here, "code")
    flow.factor_passed(db, interaction, user, "otp")
    _event(db, request, interaction, event_type, user_id=user.id)
    if kind == "recovery":
        events.record(
            db,
            "auth.recovery_remaining",
            user_id=user.id,
            remaining=recovery.remaining(db, user.id),
        )
    return _advance(db, interaction, user, request)


async def email_send(request: Request) -> Response:
    form = await request.form()
    verify_csrf(request, form)
    return await run_in_threadpool(_email_send, request)


def _email_send(request: Request) -> Response:
    """Mail a code: which citizen (one transaction), the code stored and mailed (no
    transaction open while the mail server answers), then what the page will say."""
    rt = runtime(request)
    with rt.db.transaction() as db:
        at = _step(db, request, SECOND_FACTOR)
        if isinstance(at, Response):
            return at
        interaction, user = at
        interaction_id, user_id = interaction.id, user.id
        locale = locale_of(request, interaction)
    here = flow.url(interaction_id, "email")
    sent: email_otp.SentCode | None = None
    try:
        sent = email_otp.send_code(
            rt.db, user_id, rt.mailer, interaction_id=interaction_id, locale=locale
        )
    except email_otp.Cooldown as wait:
        return with_error(here, "cooldown", wait=wait.seconds_left)
    except email_otp.NoEmailAddress:
        return flow.go(flow.url(interaction_id, "totp"))
    except MailError:
        pass
    with rt.db.transaction() as db:
        still = _load(db, request)
        if still is not None:
            if sent is not None:
                flow.set_signin(still, email_sent_to=sent.masked_email)
            _event(
                db,
                request,
                still,
                "auth.email_otp_sent",
                user_id=user_id,
                outcome="success" if sent else "failure",
                reason=None if sent else "mail_failed",
            )
    if still is None:
        return expired(request)
    return flow.go(here) if sent else with_error(here, "mail_failed")


# Enrolment --------------------------------------------------------------------------------


async def enrol_page(request: Request) -> Response:
    return await _at_step(request, "enrol", _enrol_page)


def _pending_seed(request: Request, interaction: Interaction) -> str | None:
    """The seed this sign-in (and no other) has shown, if any."""
    sealed = interaction.signin.get("totp_pending")
    if not isinstance(sealed, str):
        return None
    return totp.unseal(runtime(request).secrets, sealed, bound_to=interaction.id)


def _enrol_page(db: Session, request: Request, interaction: Interaction, user: User) -> Response:
    """A new seed for this sign-in; shown again when this page is (the app may have it)."""
    rt = runtime(request)
    secret = _pending_seed(request, interaction)
    if secret is None:
        secret = totp.new_secret()
        sealed = totp.seal(rt.secrets, secret, bound_to=interaction.id)
        flow.set_signin(interaction, totp_pending=sealed)
    _ = translator(request, interaction)
    issuer_name = urlsplit(rt.settings.issuer).hostname or "idp"
    uri = totp.provisioning_uri(secret, account=user.username, issuer_name=issuer_name)
    code = error_code(request, CODE_ERRORS)
    errors = [("code", _(CODE_ERRORS[code], seconds=wait_seconds(request)))] if code else []
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return page(
        request,
        db,
        interaction,
        "signin/enrol.html",
        {
            "title": N_("Set up your authenticator app"),
            "errors": errors,
            "action": flow.url(interaction, "enrol"),
            "qr_svg": _markup(totp.qr_svg(uri, title=_("QR code for your authenticator app"))),
            "secret": grouped,
        },
    )


def _markup(svg: str) -> Any:
    from markupsafe import Markup

    return Markup(svg)  # noqa: S704 - generated by segno from our own URI, escaped there


async def enrol_submit(request: Request) -> Response:
    form = await request.form()
    verify_csrf(request, form)
    return await _at_step(request, "enrol", partial(_enrol_submit, code=field(form, "code", 64)))


def _enrol_submit(
    db: Session, request: Request, interaction: Interaction, user: User, *, code: str
) -> Response:
    rt = runtime(request)
    here = flow.url(interaction, "enrol")
    secret = _pending_seed(request, interaction)
    if secret is None:  # nothing shown in this sign-in yet
        return flow.go(here)
    if not code.strip():
        return with_error(here, "missing")
    if not totp.well_formed(code):  # a typing mistake, not a guess: neither counted nor recorded
        return with_error(here, "format")
    ip = sessions.client_ip(request)
    verdict = rt.throttle.check(db, user_id=user.id, ip=ip)
    if not verdict.allowed:
        return _refused(here, verdict)
    try:
        confirmed = totp.confirm(db, user, secret, code, rt.secrets, replace=False)
    except totp.AlreadyEnrolled:  # set up meanwhile in another sign-in: ask for its code
        return flow.go(here)
    if not confirmed:
        rt.throttle.record_failure(db, user_id=user.id, ip=ip)
        _event(
            db,
            request,
            interaction,
            "auth.totp_enrol",
            user_id=user.id,
            outcome="failure",
            reason="invalid_code",
        )
        return with_error(here, "code")
    flow.factor_passed(db, interaction, user, "otp")
    flow.set_signin(interaction, show_codes=True, totp_pending=None)
    _event(db, request, interaction, "auth.totp_enrol", user_id=user.id)
    return _advance(db, interaction, user, request)


# Recovery codes shown once ----------------------------------------------------------------


async def recovery_codes_page(request: Request) -> Response:
    return await _at_step(request, "recovery_codes", _recovery_codes_page)


def _recovery_codes_page(
    db: Session, request: Request, interaction: Interaction, user: User
) -> Response:
    # New codes each time the page is shown: the codes on screen are always the valid ones.
    codes = recovery.generate(db, user.id)
    events.record(
        db, "auth.recovery_codes_generated", user_id=user.id, client_id=interaction.client_id
    )
    _ = translator(request, interaction)
    heading = _("Recovery codes for %(username)s", username=user.username)
    return page(
        request,
        db,
        interaction,
        "signin/recovery_codes.html",
        {
            "title": N_("Save your recovery codes"),
            "codes": codes,
            "download_href": recovery.download_href(codes, heading),
            "action": flow.url(interaction, "recovery_codes"),
        },
    )


async def recovery_codes_submit(request: Request) -> Response:
    form = await request.form()
    verify_csrf(request, form)
    return await _at_step(request, "recovery_codes", _recovery_codes_submit)


def _recovery_codes_submit(
    db: Session, request: Request, interaction: Interaction, user: User
) -> Response:
    flow.set_signin(interaction, show_codes=None)
    return _advance(db, interaction, user, request)


# New password after sign-in (must_change_password) -----------------------------------------


async def new_password_page(request: Request) -> Response:
    return await _at_step(request, "new_password", _new_password_page)


def _new_password_page(
    db: Session, request: Request, interaction: Interaction, user: User
) -> Response:
    _ = translator(request, interaction)
    return page(
        request,
        db,
        interaction,
        "signin/new_password.html",
        {
            "title": N_("Choose a new password"),
            "heading": _("Choose a new password"),
            "intro": _("Your password must be changed before you continue."),
            "errors": password_errors(request, _),
            "action": flow.url(interaction, "new_password"),
            "username": user.username,
            "min_length": passwords.MIN_LENGTH,
            "recommended_length": passwords.RECOMMENDED_LENGTH,
        },
    )


def password_errors(request: Request, _: Any) -> list[tuple[str, str]]:
    code = error_code(request, PASSWORD_ERRORS)
    if code is None:
        return []
    target = "confirm" if code == "mismatch" else "password"
    return [(target, _(PASSWORD_ERRORS[code], min=passwords.MIN_LENGTH, max=passwords.MAX_LENGTH))]


async def new_password_submit(request: Request) -> Response:
    form = await request.form()
    verify_csrf(request, form)
    password, confirm = field(form, "password"), field(form, "confirm")
    return await run_in_threadpool(_new_password_submit, request, password, confirm)


def _new_password_submit(request: Request, password: str, confirm: str) -> Response:
    """Who (one transaction), the new password checked and hashed (none open), then stored."""
    rt = runtime(request)
    with rt.db.transaction() as db:
        at = _step(db, request, "new_password")
        if isinstance(at, Response):
            return at
        interaction_id, user = at[0].id, at[1]
    checked = prepare_new_password(user, password, confirm)
    if checked.hash is None:
        return with_error(flow.url(interaction_id, "new_password"), str(checked.problem))
    with rt.db.transaction() as db:
        at = _step(db, request, "new_password")
        if isinstance(at, Response):
            return at
        interaction, user = at
        change_password(db, user, checked.hash, reason="must_change")
        _event(db, request, interaction, "auth.password_changed", user_id=user.id)
        return _advance(db, interaction, user, request)
