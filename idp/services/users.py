"""Citizens and administrators: create, list, show, disable, enable."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from idp import events
from idp.auth import throttle
from idp.auth.passwords import PasswordRejected, check_policy, hash_password
from idp.db.models import RecoveryCode, SsoSession, TotpCredential, User
from idp.i18n import N_, N_n
from idp.logout.ending import end_everything, logout_everywhere
from idp.security import SecretBox
from idp.services.errors import Conflict, InvalidInput, NotFound

USERNAME = re.compile(r"^[\w.@+-]{3,150}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
TOTP_MIN_BITS = 112  # NIST SP 800-63B §3.1.4.1 (R-OTP-04)
NOT_A_DATE = N_("birthdate '%(value)s' is not a date in the form YYYY-MM-DD")


@dataclass(frozen=True)
class NewUser:
    username: str
    password: str
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    birthdate: str | None = None
    phone_number: str | None = None
    totp_secret: str | None = None
    is_admin: bool = False


def normalize_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().lower()


def _parse_birthdate(value: str | None) -> date | None:
    if not value:
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(NOT_A_DATE, value=value) from None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise InvalidInput(NOT_A_DATE, value=value)
    if parsed > datetime.now(UTC).date() or parsed.year < 1880:
        raise InvalidInput(N_("birthdate %(value)s is not plausible"), value=value)
    return parsed


def normalize_totp_secret(value: str) -> str:
    """Accept a base32 seed as authenticator apps show it (spaces, lower case); check strength."""
    compact = re.sub(r"[\s-]", "", value).upper().rstrip("=")
    try:
        raw = base64.b32decode(compact + "=" * (-len(compact) % 8))
    except (binascii.Error, ValueError):
        raise InvalidInput(N_("TOTP secret is not valid base32")) from None
    if len(raw) * 8 < TOTP_MIN_BITS:
        raise InvalidInput(
            N_n(
                "TOTP secret has %(bits)s bit; at least %(minimum)s are required",
                "TOTP secret has %(bits)s bits; at least %(minimum)s are required",
                "bits",
            ),
            bits=len(raw) * 8,
            minimum=TOTP_MIN_BITS,
        )
    return compact


def _validate(new: NewUser) -> dict[str, Any]:
    username = normalize_username(new.username)
    if not USERNAME.fullmatch(username):
        raise InvalidInput(
            N_("username must be 3-150 letters, digits or . @ + - _ characters, without spaces")
        )
    if new.email is not None and not EMAIL.fullmatch(new.email):
        raise InvalidInput(N_("email '%(email)s' is not a valid address"), email=new.email)
    if new.phone_number is not None and not PHONE.fullmatch(new.phone_number):
        raise InvalidInput(
            N_("phone number '%(phone)s' must be in international form, e.g. +37410123456"),
            phone=new.phone_number,
        )
    for message, name in (
        (N_("given name must have 1 to 200 characters"), new.given_name),
        (N_("family name must have 1 to 200 characters"), new.family_name),
    ):
        if name is not None and not (1 <= len(name.strip()) <= 200):
            raise InvalidInput(message)
    try:
        check_policy(new.password, context=(username, new.given_name, new.family_name, new.email))
    except PasswordRejected as exc:
        raise InvalidInput(str(exc)) from None  # the password policy's own words (English)
    return {
        "username": username,
        "email": new.email.lower() if new.email else None,
        "given_name": new.given_name.strip() if new.given_name else None,
        "family_name": new.family_name.strip() if new.family_name else None,
        "birthdate": _parse_birthdate(new.birthdate),
        "phone_number": new.phone_number,
    }


def create_user(session: Session, box: SecretBox, new: NewUser, *, actor: str) -> User:
    fields = _validate(new)
    totp = normalize_totp_secret(new.totp_secret) if new.totp_secret else None
    if session.scalar(select(User.id).where(User.username == fields["username"])) is not None:
        raise Conflict(N_("username '%(username)s' is already taken"), username=fields["username"])
    now = datetime.now(UTC)
    user = User(
        sub=secrets.token_urlsafe(24),
        password_hash=hash_password(new.password),
        password_changed_at=now,
        is_admin=new.is_admin,
        **fields,
    )
    if totp:
        user.totp = TotpCredential(secret_encrypted=box.encrypt(totp), confirmed_at=now)
    session.add(user)
    session.flush()
    events.record(
        session,
        "admin.user_created",
        actor=actor,
        user_id=user.id,
        username=user.username,
        admin=user.is_admin,
        totp=totp is not None,
    )
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == normalize_username(username)))
    if user is None:
        raise NotFound(N_("no user '%(username)s'"), username=username)
    return user


def list_users(
    session: Session, *, query: str | None = None, limit: int = 100, offset: int = 0
) -> list[User]:
    statement = select(User).order_by(User.username).limit(limit).offset(offset)
    if query:
        pattern = f"%{query.lower()}%"
        statement = statement.where(
            func.lower(User.username).like(pattern)
            | func.lower(func.coalesce(User.email, "")).like(pattern)
            | func.lower(func.coalesce(User.family_name, "")).like(pattern)
        )
    return list(session.scalars(statement))


def set_disabled(session: Session, username: str, disabled: bool, *, actor: str) -> User:
    """Disable (ending every session and grant, the e-services told) or enable an account."""
    user = get_user(session, username)
    if disabled and user.disabled_at is None:
        user.disabled_at = datetime.now(UTC)
        end_everything(session, user.id, "account_disabled")
    elif not disabled:
        user.disabled_at = None
    events.record(
        session,
        "admin.user_disabled" if disabled else "admin.user_enabled",
        actor=actor,
        user_id=user.id,
        username=user.username,
    )
    return user


def unlock(session: Session, username: str, *, actor: str) -> tuple[User, bool]:
    """Lift a sign-in lock and clear the failed attempts; also says whether there was any."""
    user = get_user(session, username)
    was_throttled = throttle.unlock(session, user.id)
    events.record(
        session,
        "admin.user_unlocked",
        actor=actor,
        user_id=user.id,
        username=user.username,
        was_throttled=was_throttled,
    )
    return user, was_throttled


def search_users(
    session: Session, query: str | None = None, *, limit: int = 20, offset: int = 0
) -> tuple[list[User], int]:
    """A page of accounts matching `query` (username, email or family name), and the total."""
    statement = select(User)
    if query and query.strip():
        pattern = f"%{query.strip().lower()[:200]}%"
        statement = statement.where(
            func.lower(User.username).like(pattern)
            | func.lower(func.coalesce(User.email, "")).like(pattern)
            | func.lower(func.coalesce(User.family_name, "")).like(pattern)
        )
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    page = statement.order_by(User.username).limit(max(1, limit)).offset(max(0, offset))
    return list(session.scalars(page)), int(total)


def set_admin(session: Session, username: str, admin: bool, *, actor: str) -> User:
    """Grant or revoke the administrator role; either way the account's sessions and grants
    end (the e-services told), so that the next sign-in happens under the new role (admins
    always with a second factor)."""
    user = get_user(session, username)
    if user.is_admin != admin:
        user.is_admin = admin
        end_everything(session, user.id, "role_changed")
    events.record(
        session,
        "admin.user_admin_granted" if admin else "admin.user_admin_revoked",
        actor=actor,
        user_id=user.id,
        username=user.username,
    )
    return user


def reset_second_factor(session: Session, username: str, *, actor: str) -> User:
    """Remove the authenticator app and recovery codes (the citizen enrols again at the next
    sign-in) and end every session and grant, the e-services told."""
    user = get_user(session, username)
    had_totp = user.totp is not None
    if user.totp is not None:
        session.delete(user.totp)
        user.totp = None
    removed = session.execute(
        delete(RecoveryCode)
        .where(RecoveryCode.user_id == user.id)
        .execution_options(synchronize_session=False)
    )
    end_everything(session, user.id, "second_factor_reset")
    events.record(
        session,
        "admin.user_second_factor_reset",
        actor=actor,
        user_id=user.id,
        username=user.username,
        had_totp=had_totp,
        recovery_codes_removed=int(getattr(removed, "rowcount", 0) or 0),
    )
    return user


def end_sessions(session: Session, username: str, *, actor: str) -> tuple[User, int]:
    """End every live single sign-on session of an account; returns how many."""
    user = get_user(session, username)
    count = logout_everywhere(session, user.id, "ended_by_admin")  # e-services are told too
    events.record(
        session,
        "admin.user_sessions_ended",
        actor=actor,
        user_id=user.id,
        username=user.username,
        count=count,
    )
    return user, count


def live_sessions(session: Session, user: User) -> int:
    return int(
        session.scalar(
            select(func.count(SsoSession.id)).where(
                SsoSession.user_id == user.id,
                SsoSession.ended_at.is_(None),
                SsoSession.expires_at > datetime.now(UTC),
            )
        )
        or 0
    )


def describe(user: User) -> dict[str, Any]:
    """A user as operators see it: no password hash, no one-time-code seed."""
    return {
        "username": user.username,
        "sub": user.sub,
        "email": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "birthdate": user.birthdate.isoformat() if user.birthdate else None,
        "phone_number": user.phone_number,
        "admin": user.is_admin,
        "totp": user.totp is not None and user.totp.confirmed_at is not None,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }
