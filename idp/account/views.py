"""The account pages. Each reads the request, runs one transaction (`account_view`) and
answers a page (GET) or a 303 (POST)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
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
from idp.account.pages import Call, account_view, go, show, translator
from idp.auth import passwords, recovery, sessions, totp
from idp.auth.newpassword import change_password, prepare_new_password
from idp.auth.pages import field as form_field
from idp.auth.views import password_errors
from idp.db.models import Event, SsoSession, TokenGrant
from idp.i18n import N_
from idp.logout.ending import end_everything, log_out, logout_everywhere
from idp.logout.views import CONFIRM as SIGN_OUT
from idp.oauth import consents
from idp.oauth.claims import consent_claims
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


def _missing(call: Call, title: str, back: str, back_text: str) -> Response:
    """What a confirmation page or an action finds gone (ended, revoked, another's): 404."""
    return show(
        call,
        "account/missing.html",
        {"title": title, "back": back, "back_text": back_text},
        status_code=404,
    )


# Profile ------------------------------------------------------------------------------------


def _home(call: Call) -> Response:
    user = call.citizen.user
    rows = [
        (name, label, getattr(user, name)) for name, label in PROFILE_CLAIMS if getattr(user, name)
    ]
    return show(
        call,
        "account/home.html",
        {"title": N_("Your account"), "profile": rows, "notice": _notice(call)},
    )


home = account_view(_home)


# Password -----------------------------------------------------------------------------------


def _password_page(call: Call) -> Response:
    code = call.request.query_params.get("error", "")
    _ = translator(call)
    errors = (
        [("current", _(CURRENT_ERRORS[code]))]
        if code in CURRENT_ERRORS
        else password_errors(call.request, _)
    )
    return show(
        call,
        "account/password.html",
        {
            "title": N_("Change your password"),
            "errors": errors,
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


def _has_totp(call: Call) -> bool:
    app = call.citizen.user.totp
    return app is not None and app.confirmed_at is not None


def _security(call: Call) -> Response:
    return show(
        call,
        "account/security.html",
        {
            "title": N_("Second factor and recovery codes"),
            "has_totp": _has_totp(call),
            "codes_left": recovery.remaining(call.db, call.citizen.user.id),
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
    _ = translator(call)
    return show(
        call,
        "account/totp.html",
        {
            "title": N_("Set up a new authenticator app"),
            "qr_svg": Markup(totp.qr_svg(uri)),  # noqa: S704 - generated by segno, escaped there
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "sealed": totp.seal(call.runtime.secrets, secret, bound_to=call.citizen.sso.sid),
            "replacing": _has_totp(call),
            "errors": [("code", _(CODE_ERRORS[code]))] if code in CODE_ERRORS else [],
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


def _recovery_codes_page(call: Call) -> Response:
    """Confirm first: new codes void the old ones."""
    return show(
        call,
        "account/confirm_codes.html",
        {
            "title": N_("Make new recovery codes"),
            "codes_left": recovery.remaining(call.db, call.citizen.user.id),
        },
    )


def _recovery_codes(call: Call) -> Response:
    """New recovery codes replace the old ones. They are shown in this answer, once: a
    redirect would have to carry them, so this POST answers with the page (not cached)."""
    user = call.citizen.user
    codes = recovery.generate(call.db, user.id)
    events.record(call.db, "account.recovery_codes_generated", user_id=user.id, ip=_ip(call))
    _ = translator(call)
    heading = _("Recovery codes for %(username)s", username=user.username)
    return show(
        call,
        "account/codes.html",
        {
            "title": N_("Your new recovery codes"),
            "codes": codes,
            "download_href": recovery.download_href(codes, heading),
        },
    )


security = account_view(_security)
totp_page = account_view(_totp_page, fresh=True)
totp_submit = account_view(_totp_submit, fresh=True, back="/account/security/totp")
recovery_codes_page = account_view(_recovery_codes_page, fresh=True)
recovery_codes = account_view(_recovery_codes, fresh=True, back="/account/security/recovery-codes")


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


def _session_row(call: Call, found: SsoSession) -> dict[str, Any]:
    return {
        "sid": found.sid,
        "created_at": found.created_at,
        "last_seen_at": found.last_seen_at,
        "device": history.device(found.user_agent),
        "ip": found.ip,
        "acr": found.acr,
        "current": found.sid == call.citizen.sso.sid,
    }


def _sessions(call: Call) -> Response:
    rows = [_session_row(call, s) for s in _live_sessions(call)]
    return show(
        call,
        "account/sessions.html",
        {"title": N_("Where you are signed in"), "sessions": rows, "notice": _notice(call)},
    )


def _session_of(call: Call) -> SsoSession | None:
    sid = str(call.request.path_params["sid"])[:64]
    return next((s for s in _live_sessions(call) if s.sid == sid), None)


def _end_session_page(call: Call) -> Response:
    """Confirm first. This browser's own session is ended as by the provider's sign-out
    (`/logout`): the e-services used in it are told at once, in the browser too."""
    found = _session_of(call)
    if found is None:
        return _missing(
            call,
            N_("This session has already ended"),
            "/account/sessions",
            N_("Back to where you are signed in"),
        )
    row = _session_row(call, found)
    return show(
        call,
        "account/confirm_session.html",
        {
            "title": N_("Sign out of this browser") if row["current"] else N_("Sign out a device"),
            "session": row,
            "action": SIGN_OUT if row["current"] else f"/account/sessions/{found.sid}/end",
        },
    )


def _end_session(call: Call) -> Response:
    found = _session_of(call)
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


def _end_all_page(call: Call) -> Response:
    return show(call, "account/confirm_end_all.html", {"title": N_("Sign out everywhere")})


def _end_all(call: Call) -> Response:
    logout_everywhere(call.db, call.citizen.user.id, "signed_out_everywhere_by_citizen")
    response = go("/account/signed-out")
    sessions.clear_session_cookie(response, call.runtime.settings)
    return response


sessions_page = account_view(_sessions)
end_session_page = account_view(_end_session_page)
end_session = account_view(_end_session, back="/account/sessions")
end_all_page = account_view(_end_all_page)
end_all_sessions = account_view(_end_all, back="/account/sessions")


# Connected e-services -----------------------------------------------------------------------


def _connected(call: Call) -> list[dict[str, Any]]:
    """The e-services with the citizen's consent or a live grant, and what they receive
    (claim names), by name."""
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
    return [
        {
            "client_id": client_id,
            "name": names.get(client_id, client_id),
            "claims": history.citizen_claims(claims),
        }
        for client_id, claims in sorted(found.items(), key=lambda i: names.get(i[0], i[0]))
    ]


def _services(call: Call) -> Response:
    return show(
        call,
        "account/services.html",
        {
            "title": N_("Connected e-services"),
            "services": _connected(call),
            "notice": _notice(call),
        },
    )


def _revoke_page(call: Call) -> Response:
    client_id = str(call.request.path_params["client_id"])[:128]
    service = next((s for s in _connected(call) if s["client_id"] == client_id), None)
    if service is None:
        return _missing(
            call,
            N_("This e-service does not receive your information"),
            "/account/services",
            N_("Back to connected e-services"),
        )
    return show(
        call,
        "account/confirm_revoke.html",
        {"title": N_("Revoke an e-service's access"), "service": service},
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
revoke_page = account_view(_revoke_page)
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


def _entry_of(call: Call) -> Event | None:
    raw = str(call.request.path_params["event_id"])
    return history.find(call.db, call.citizen.user.id, int(raw)) if raw.isdigit() else None


def _entry_missing(call: Call) -> Response:
    return _missing(
        call,
        N_("This entry was not found"),
        "/account/history",
        N_("Back to where your identity was used"),
    )


def _not_me_page(call: Call) -> Response:
    """Confirm first: the report ends every session and access at once."""
    event = _entry_of(call)
    if event is None:
        return _entry_missing(call)
    entry = history.entry(event, history.client_names(call.db))
    return show(
        call,
        "account/confirm_not_me.html",
        {"title": N_("Report a use you do not recognise"), "entry": entry},
    )


def _not_me(call: Call) -> Response:
    event = _entry_of(call)
    if event is None:
        return _entry_missing(call)
    compromise.report_not_me(call.db, call.citizen.user, event, ip=_ip(call))
    response = go("/account/secured")
    sessions.clear_session_cookie(response, call.runtime.settings)
    return response


history_page = account_view(_history)
history_json = account_view(_history_json)
not_me_page = account_view(_not_me_page)
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
