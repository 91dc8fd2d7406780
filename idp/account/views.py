"""The account pages. Each reads the request, runs one transaction (`account_view`) and
answers a page (GET) or a 303 (POST)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from markupsafe import Markup
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp import events
from idp.account import access, compromise, history
from idp.account.access import Citizen
from idp.account.pages import Call, account_view, go, show
from idp.auth import passwords, recovery, sessions, totp
from idp.auth.newpassword import PASSWORD_ERRORS, change_password, prepare_new_password
from idp.auth.pages import field as form_field
from idp.db.models import SsoSession, TokenGrant
from idp.i18n import N_
from idp.logout.ending import end_everything, log_out, logout_everywhere
from idp.oauth import consents
from idp.oauth.claims import CLAIM_LABELS, consent_claims
from idp.oauth.tokens import revoke_grant
from idp.runtime import Runtime
from idp.templating import render

PROFILE_CLAIMS = (
    ("username", N_("Username")),
    ("given_name", N_("Given name")),
    ("family_name", N_("Family name")),
    ("birthdate", N_("Date of birth")),
    ("email", N_("Email")),
    ("phone_number", N_("Phone number")),
    ("public_service_number", N_("Public service number")),
    ("identity_document_number", N_("Identity document number")),
)
CURRENT_ERRORS = {
    "current": N_("Your current password is not correct."),
    "throttled": N_("Too many attempts. Wait a while and try again."),
}
CODE_ERRORS = {
    "code": N_("The code is not correct. Enter the code your app shows now."),
    "format": totp.MALFORMED,
    "expired": N_("This set-up took too long. Start again."),
}
DONE = {
    "password": N_(
        "Your password was changed. You are signed out on your other devices, and e-services "
        "will ask you to sign in again."
    ),
    "totp": N_("Your new authenticator app is set up; the old one no longer works."),
    "session": N_("The session was signed out."),
    "revoked": N_("The e-service no longer receives your information."),
}


def _ip(call: Call) -> str | None:
    return sessions.client_ip(call.request)


def _notice(call: Call) -> str | None:
    code = call.request.query_params.get("done", "")
    return DONE.get(code)


# Profile ------------------------------------------------------------------------------------


def _home(call: Call) -> Response:
    user = call.citizen.user
    rows = [(label, getattr(user, name)) for name, label in PROFILE_CLAIMS if getattr(user, name)]
    return show(
        call,
        "account/home.html",
        {"title": N_("Your account"), "profile": rows, "notice": _notice(call)},
    )


home = account_view(_home)


# Password -----------------------------------------------------------------------------------


def _password_page(call: Call) -> Response:
    code = call.request.query_params.get("error", "")
    known = {**PASSWORD_ERRORS, **CURRENT_ERRORS}
    return show(
        call,
        "account/password.html",
        {
            "title": N_("Change your password"),
            "error": known.get(code),
            "error_field": "current" if code in CURRENT_ERRORS else "password",
            "min_length": passwords.MIN_LENGTH,
            "max_length": passwords.MAX_LENGTH,
        },
    )


@dataclass(frozen=True)
class PasswordsChecked:
    """The passwords of a change, checked with no transaction open (argon2id, up to three
    times): why the change is refused, or the new hash. `against`: the stored hash the current
    password was checked with."""

    problem: str | None
    against: str | None = None
    new_hash: str | None = None


def _check_passwords(
    runtime: Runtime, request: Request, citizen: Citizen, form: FormData | None
) -> PasswordsChecked:
    user = citizen.user
    with runtime.db.read() as db:
        verdict = runtime.throttle.check(db, user_id=user.id, ip=sessions.client_ip(request))
    if not verdict.allowed:
        return PasswordsChecked("throttled")
    current, stored = form_field(form, "current"), user.password_hash
    if not passwords.verify_password(current, stored):
        return PasswordsChecked("current", stored)
    new = prepare_new_password(user, form_field(form, "password"), form_field(form, "confirm"))
    return PasswordsChecked(new.problem, stored, new.hash)


def _password_submit(call: Call) -> Response:
    user = call.citizen.user
    here = "/account/password"
    checked: PasswordsChecked = call.prepared
    if checked.against is not None and user.password_hash != checked.against:
        return go(f"{here}?error=current")  # changed meanwhile: what was checked is stale
    if checked.problem == "throttled":
        return go(f"{here}?error=throttled")
    if checked.problem == "current":
        call.runtime.throttle.record_failure(call.db, user_id=user.id, ip=_ip(call))
        events.record(
            call.db,
            "account.password_changed",
            outcome="failure",
            user_id=user.id,
            ip=_ip(call),
            reason="current",
        )
        return go(f"{here}?error=current")
    if checked.new_hash is None:
        return go(f"{here}?error={checked.problem}")
    change_password(call.db, user, checked.new_hash, reason="account")
    ended = end_everything(call.db, user.id, "password_changed", keep_sid=call.citizen.sso.sid)
    events.record(
        call.db, "account.password_changed", user_id=user.id, ip=_ip(call), sessions_ended=ended
    )
    return go("/account?done=password")


password_page = account_view(_password_page)
password_submit = account_view(_password_submit, prepare=_check_passwords)


# Second factors -----------------------------------------------------------------------------


def _security(call: Call) -> Response:
    user = call.citizen.user
    return show(
        call,
        "account/security.html",
        {
            "title": N_("Second factor and recovery codes"),
            "has_totp": user.totp is not None and user.totp.confirmed_at is not None,
            "codes_left": recovery.remaining(call.db, user.id),
            "notice": _notice(call),
        },
    )


def _totp_page(call: Call) -> Response:
    """A new key to scan, sealed in the form for this session only; nothing changes until a
    code from it is entered in this session."""
    secret = totp.new_secret()
    issuer_name = urlsplit(call.runtime.settings.issuer).hostname or "idp"
    uri = totp.provisioning_uri(secret, account=call.citizen.user.username, issuer_name=issuer_name)
    code = call.request.query_params.get("error", "")
    return show(
        call,
        "account/totp.html",
        {
            "title": N_("Set up a new authenticator app"),
            "qr_svg": Markup(totp.qr_svg(uri)),  # noqa: S704 - generated by segno, escaped there
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "sealed": totp.seal(call.runtime.secrets, secret, bound_to=call.citizen.sso.sid),
            "error": CODE_ERRORS.get(code),
        },
    )


def _totp_submit(call: Call) -> Response:
    """Replace the authenticator app by the new one, once a code from it is correct."""
    user = call.citizen.user
    here = "/account/security/totp"
    secret = totp.unseal(
        call.runtime.secrets,
        call.field("sealed", 1000),
        bound_to=call.citizen.sso.sid,
        max_age=call.runtime.settings.account_reauth_seconds,
    )
    if secret is None:  # too old, another session's, tampered with: start again
        return go(f"{here}?error=expired")
    code = call.field("code", 64)
    if not totp.well_formed(code):  # a typing mistake, not a guess: not counted
        return go(f"{here}?error=format")
    if not totp.confirm(call.db, user, secret, code, call.runtime.secrets, replace=True):
        call.runtime.throttle.record_failure(call.db, user_id=user.id, ip=_ip(call))
        return go(f"{here}?error=code")
    events.record(call.db, "account.totp_replaced", user_id=user.id, ip=_ip(call))
    return go("/account/security?done=totp")


def _recovery_codes(call: Call) -> Response:
    """New recovery codes replace the old ones. They are shown in this answer, once: a
    redirect would have to carry them, so this POST answers with the page (not cached)."""
    codes = recovery.generate(call.db, call.citizen.user.id)
    events.record(
        call.db, "account.recovery_codes_generated", user_id=call.citizen.user.id, ip=_ip(call)
    )
    return show(
        call,
        "account/codes.html",
        {"title": N_("Your new recovery codes"), "codes": codes},
    )


security = account_view(_security)
totp_page = account_view(_totp_page, fresh=True)
totp_submit = account_view(_totp_submit, fresh=True, back="/account/security/totp")
recovery_codes = account_view(_recovery_codes, fresh=True, back="/account/security")


# Sessions -----------------------------------------------------------------------------------


def _live_sessions(call: Call) -> list[SsoSession]:
    now = datetime.now(UTC)
    query = (
        select(SsoSession)
        .where(
            SsoSession.user_id == call.citizen.user.id,
            SsoSession.ended_at.is_(None),
            SsoSession.expires_at > now,
        )
        .order_by(SsoSession.created_at.desc())
    )
    return list(call.db.scalars(query))


def _sessions(call: Call) -> Response:
    rows = [
        {
            "sid": s.sid,
            "created_at": s.created_at,
            "last_seen_at": s.last_seen_at,
            "device": history.device(s.user_agent),
            "ip": s.ip,
            "acr": s.acr,
            "current": s.sid == call.citizen.sso.sid,
        }
        for s in _live_sessions(call)
    ]
    return show(
        call,
        "account/sessions.html",
        {"title": N_("Where you are signed in"), "sessions": rows, "notice": _notice(call)},
    )


def _end_session(call: Call) -> Response:
    sid = str(call.request.path_params["sid"])[:64]
    found = next((s for s in _live_sessions(call) if s.sid == sid), None)
    if found is not None:
        log_out(
            call.db,
            found,
            issuer=call.runtime.settings.issuer,
            initiator=None,
            reason="ended_by_citizen",
        )
    if found is not None and found.sid == call.citizen.sso.sid:
        response = go("/account")
        sessions.clear_session_cookie(response, call.runtime.settings)
        return response
    return go("/account/sessions?done=session")


def _end_all(call: Call) -> Response:
    logout_everywhere(call.db, call.citizen.user.id, "signed_out_everywhere_by_citizen")
    response = go("/account/signed-out")
    sessions.clear_session_cookie(response, call.runtime.settings)
    return response


sessions_page = account_view(_sessions)
end_session = account_view(_end_session, back="/account/sessions")
end_all_sessions = account_view(_end_all, back="/account/sessions")


# Connected e-services -----------------------------------------------------------------------


def _services(call: Call) -> Response:
    user_id = call.citizen.user.id
    names = history.client_names(call.db)
    found: dict[str, set[str]] = {}
    for consent in consents.active(call.db, user_id):
        found.setdefault(consent.client_id, set()).update(consent.claims)
    live = select(TokenGrant).where(
        TokenGrant.user_id == user_id,
        TokenGrant.revoked_at.is_(None),
        TokenGrant.expires_at > datetime.now(UTC),
    )
    for grant in call.db.scalars(live):
        claims = grant.claims if isinstance(grant.claims, dict) else None
        found.setdefault(grant.client_id, set()).update(consent_claims(grant.scope, claims))
    rows = [
        {
            "client_id": client_id,
            "name": names.get(client_id, client_id),
            "claims": [CLAIM_LABELS.get(c, c) for c in sorted(claims)],
        }
        for client_id, claims in sorted(found.items(), key=lambda i: names.get(i[0], i[0]))
    ]
    return show(
        call,
        "account/services.html",
        {"title": N_("Connected e-services"), "services": rows, "notice": _notice(call)},
    )


def _revoke(call: Call) -> Response:
    client_id = str(call.request.path_params["client_id"])[:128]
    user_id = call.citizen.user.id
    consents.revoke(call.db, user_id, client_id)
    live = select(TokenGrant.id).where(
        TokenGrant.user_id == user_id,
        TokenGrant.client_id == client_id,
        TokenGrant.revoked_at.is_(None),
    )
    for grant_id in list(call.db.scalars(live)):
        revoke_grant(call.db, grant_id, reason="revoked_by_citizen")
    return go("/account/services?done=revoked")


services = account_view(_services)
revoke_service = account_view(_revoke, back="/account/services")


# Where my identity was used -----------------------------------------------------------------


def _history(call: Call) -> Response:
    raw = call.request.query_params.get("page", "1")
    number = min(int(raw), 10000) if raw.isdigit() and int(raw) >= 1 else 1
    rows = history.entries(
        call.db,
        call.citizen.user.id,
        limit=history.PAGE_SIZE + 1,
        offset=(number - 1) * history.PAGE_SIZE,
    )
    return show(
        call,
        "account/history.html",
        {
            "title": N_("Where your identity was used"),
            "entries": rows[: history.PAGE_SIZE],
            "page": number,
            "more": len(rows) > history.PAGE_SIZE,
            "labels": CLAIM_LABELS,
        },
    )


def _history_json(call: Call) -> Response:
    rows = history.entries(call.db, call.citizen.user.id, limit=history.EXPORT_LIMIT)
    return JSONResponse(
        {"username": call.citizen.user.username, "entries": [r.as_dict() for r in rows]},
        headers={
            "Content-Disposition": 'attachment; filename="identity-use.json"',
            "Cache-Control": "no-store",
        },
    )


def _not_me(call: Call) -> Response:
    raw = str(call.request.path_params["event_id"])
    event = history.find(call.db, call.citizen.user.id, int(raw)) if raw.isdigit() else None
    if event is None:
        return show(
            call,
            "account/missing.html",
            {"title": N_("This entry was not found")},
            status_code=404,
        )
    compromise.report_not_me(call.db, call.citizen.user, event, ip=_ip(call))
    response = go("/account/secured")
    sessions.clear_session_cookie(response, call.runtime.settings)
    return response


history_page = account_view(_history)
history_json = account_view(_history_json)
not_me = account_view(_not_me, back="/account/history")


# Pages without a session --------------------------------------------------------------------


async def secured(request: Request) -> Response:
    return render(request, "account/secured.html", {"title": N_("Your account is secured")})


async def signed_out(request: Request) -> Response:
    return render(request, "account/signed_out.html", {"title": N_("You are signed out")})


async def resume(request: Request) -> Response:
    def work() -> Response:
        runtime: Runtime = request.app.state.runtime
        with runtime.db.transaction() as db:
            return access.resume(db, runtime, request)

    return await run_in_threadpool(work)


async def cancel(request: Request) -> Response:
    def work() -> Response:
        runtime: Runtime = request.app.state.runtime
        with runtime.db.transaction() as db:
            return access.cancel(db, request)

    return await run_in_threadpool(work)
