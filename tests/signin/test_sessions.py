"""The SSO session: server-side, new id on every sign-in, idle and absolute timeouts, logout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from idp.auth import sessions
from idp.db.models import SsoSession
from idp.runtime import Runtime
from idp.security import hash_secret
from idp.services import users as user_service
from tests.signin.helpers import Browser, add_citizen, events_of, resume_location


def _signed_in(browser: Browser, runtime: Runtime) -> str:
    citizen = add_citizen(runtime)
    interaction_id = browser.start()
    browser.sign_in_password(interaction_id, citizen.username, citizen.password)
    done = browser.submit(browser.page(f"/login/{interaction_id}/totp"), {"code": citizen.code()})
    assert done.headers["location"] == resume_location(interaction_id)
    cookie = browser.session_cookie()
    assert cookie
    return cookie


def _session_counts(browser: Browser) -> bool:
    """Whether the browser's session lets a new request through without signing in."""
    interaction_id = browser.start()
    return browser.get(f"/login/{interaction_id}").headers.get("location") == resume_location(
        interaction_id
    )


def _row(runtime: Runtime, cookie: str) -> SsoSession:
    with runtime.db.read() as db:
        row = db.scalar(select(SsoSession).where(SsoSession.token_hash == hash_secret(cookie)))
        assert row is not None
        return row


def _age(runtime: Runtime, cookie: str, **values: datetime) -> None:
    with runtime.db.transaction() as db:
        db.execute(
            update(SsoSession).where(SsoSession.token_hash == hash_secret(cookie)).values(**values)
        )


def test_the_cookie_holds_only_an_opaque_value(browser: Browser, runtime: Runtime) -> None:
    cookie = _signed_in(browser, runtime)
    row = _row(runtime, cookie)
    assert row.token_hash == hash_secret(cookie) and cookie not in (row.sid, row.token_hash)
    assert row.acr == "substantial" and row.amr == ["pwd", "otp", "mfa"]
    assert _session_counts(browser)


def test_idle_timeout_ends_the_session(browser: Browser, runtime: Runtime) -> None:
    cookie = _signed_in(browser, runtime)
    idle = timedelta(seconds=runtime.settings.session_idle_timeout + 1)
    _age(runtime, cookie, last_seen_at=datetime.now(UTC) - idle)
    assert not _session_counts(browser)
    assert _row(runtime, cookie).ended_at is not None
    assert events_of(runtime, "session.ended")[-1].data["reason"] == "idle_timeout"


def test_use_keeps_the_session_alive(browser: Browser, runtime: Runtime) -> None:
    cookie = _signed_in(browser, runtime)
    almost = timedelta(seconds=runtime.settings.session_idle_timeout - 60)
    _age(runtime, cookie, last_seen_at=datetime.now(UTC) - almost)
    assert _session_counts(browser)
    assert _row(runtime, cookie).last_seen_at > datetime.now(UTC) - timedelta(seconds=60)


def test_absolute_timeout_ends_the_session(browser: Browser, runtime: Runtime) -> None:
    cookie = _signed_in(browser, runtime)
    _age(runtime, cookie, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert not _session_counts(browser)
    assert events_of(runtime, "session.ended")[-1].data["reason"] == "absolute_timeout"


def test_logout_ends_the_session_server_side(browser: Browser, runtime: Runtime) -> None:
    cookie = _signed_in(browser, runtime)
    with runtime.db.transaction() as db:
        row = db.scalar(select(SsoSession).where(SsoSession.token_hash == hash_secret(cookie)))
        assert row is not None
        sessions.end_session(db, row, reason="logout")
    # The browser still presents the cookie; the server no longer honours it.
    assert browser.session_cookie() == cookie
    assert not _session_counts(browser)


def test_disabling_the_account_ends_its_sessions(browser: Browser, runtime: Runtime) -> None:
    cookie = _signed_in(browser, runtime)
    with runtime.db.transaction() as db:
        user_service.set_disabled(db, "anahit", True, actor="helpdesk")
    assert _row(runtime, cookie).ended_at is not None
    assert not _session_counts(browser)


def test_https_issuer_uses_a_host_prefixed_secure_cookie(runtime: Runtime) -> None:
    from starlette.responses import Response

    settings = runtime.settings.model_copy(update={"issuer": "https://id.example.am"})
    response = Response()
    sessions.set_session_cookie(response, "value", settings)
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-idp_session=value")
    assert "Secure" in header and "HttpOnly" in header and "Path=/" in header
    assert "Domain" not in header
