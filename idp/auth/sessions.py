"""Single sign-on sessions, kept server-side.

The browser holds only an opaque random value; the database holds its SHA-256. Every
authentication creates a new session with a new value and ends the previous one (no fixation).
A session ends after `session_idle_timeout` without use, `session_absolute_timeout` after it
was created, at logout, and when the account is disabled.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from idp import events
from idp.config import Settings
from idp.db.models import SsoSession, User
from idp.security import hash_secret, random_token

SECURE_COOKIE = "__Host-idp_session"
PLAIN_COOKIE = "idp_session"


def is_https(settings: Settings) -> bool:
    return settings.issuer.startswith("https://")


def cookie_name(settings: Settings) -> str:
    """`__Host-` (Secure, Path=/, no Domain) under https; a plain name on localhost http."""
    return SECURE_COOKIE if is_https(settings) else PLAIN_COOKIE


def has_cookie(request: Request, settings: Settings) -> bool:
    """Whether the browser sends a session cookie, without looking the session up (no database
    query): enough to offer the link to the account on every page. The session may have ended
    since; the account then asks to sign in."""
    return bool(request.cookies.get(cookie_name(settings)))


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def current_session(db: Session, request: Request, settings: Settings) -> SsoSession | None:
    """The live session named by the browser's cookie, with its idle timer refreshed.

    A session past a timeout, ended, or of a disabled citizen is no session.
    """
    value = request.cookies.get(cookie_name(settings))
    if not value or len(value) > 128:
        return None
    sso = db.scalar(
        select(SsoSession).where(
            SsoSession.token_hash == hash_secret(value), SsoSession.ended_at.is_(None)
        )
    )
    if sso is None:
        return None
    now = datetime.now(UTC)
    if now >= sso.expires_at:
        end_session(db, sso, reason="absolute_timeout")
        return None
    if now >= sso.last_seen_at + timedelta(seconds=settings.session_idle_timeout):
        end_session(db, sso, reason="idle_timeout")
        return None
    user = db.get(User, sso.user_id)
    if user is None or user.disabled:
        end_session(db, sso, reason="account_disabled")
        return None
    sso.last_seen_at = now
    return sso


def create_session(
    db: Session,
    *,
    user: User,
    acr: str,
    amr: list[str],
    auth_time: datetime,
    request: Request,
    settings: Settings,
    previous: SsoSession | None = None,
) -> tuple[SsoSession, str]:
    """A new session for `user`; ends `previous`. Returns the row and the raw cookie value."""
    if previous is not None and previous.ended_at is None:
        end_session(db, previous, reason="reauthenticated")
    value = random_token(32)
    now = datetime.now(UTC)
    sso = SsoSession(
        sid=random_token(24),
        token_hash=hash_secret(value),
        user_id=user.id,
        acr=acr,
        amr=list(amr),
        auth_time=auth_time,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=settings.session_absolute_timeout),
        ip=client_ip(request),
        user_agent=(request.headers.get("user-agent") or "")[:300] or None,
    )
    db.add(sso)
    db.flush()
    events.record(
        db,
        "session.created",
        user_id=user.id,
        ip=sso.ip,
        sid=sso.sid,
        acr=acr,
        amr=list(amr),
    )
    return sso, value


def set_session_cookie(response: Response, value: str, settings: Settings) -> None:
    """A browser-session cookie: the server, not the cookie's expiry, enforces timeouts."""
    response.set_cookie(
        cookie_name(settings),
        value,
        path="/",
        secure=is_https(settings),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings), path="/", secure=is_https(settings), httponly=True, samesite="lax"
    )


def end_session(db: Session, sso: SsoSession, *, reason: str) -> None:
    """End one session now (logout, timeout, re-authentication)."""
    if sso.ended_at is not None:
        return
    sso.ended_at = datetime.now(UTC)
    events.record(db, "session.ended", user_id=sso.user_id, sid=sso.sid, reason=reason)


def end_all_sessions(db: Session, user_id: int, *, reason: str, keep_sid: str | None = None) -> int:
    """End every live session of a citizen (but the one `keep_sid` names, if given); returns
    how many were ended."""
    live = (SsoSession.user_id == user_id, SsoSession.ended_at.is_(None))
    kept = (SsoSession.sid != keep_sid,) if keep_sid is not None else ()
    ended = db.execute(
        update(SsoSession)
        .where(*live, *kept)
        .values(ended_at=datetime.now(UTC))
        .execution_options(synchronize_session="fetch")
    )
    count = int(getattr(ended, "rowcount", 0) or 0)
    if count:
        events.record(db, "session.ended_all", user_id=user_id, reason=reason, count=count)
    return count
