"""Choosing a new password (after a reset, or when an administrator requires it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.auth import passwords
from idp.auth.blocklist import is_blocked
from idp.db.models import PasswordReset, User
from idp.i18n import N_, Message, N_n

PASSWORD_ERRORS: dict[str, Message] = {
    "missing": N_("Enter a new password."),
    "too_short": N_n(
        "The password is too short: use at least %(min)s character. A few unrelated words "
        "make a long password that is easy to remember.",
        "The password is too short: use at least %(min)s characters. A few unrelated words "
        "make a long password that is easy to remember.",
        "min",
    ),
    "too_long": N_n(
        "The password is too long: use at most %(max)s character.",
        "The password is too long: use at most %(max)s characters.",
        "max",
    ),
    "context": N_("The password must not be your username, your name or your email address."),
    "blocked": N_(
        "This password is too common or has appeared in a data breach, so it is easy to "
        "guess. Choose another one."
    ),
    "same": N_("The new password must be different from the current one."),
    "mismatch": N_("The two passwords do not match. Type the same password twice."),
}


def password_problem(user: User, password: str, confirm: str) -> str | None:
    """Why this password may not be used (a key of `PASSWORD_ERRORS`), or None. NIST 800-63B:
    length, blocklist and context words only; no composition rules."""
    if not password:
        return "missing"
    normalized = passwords.normalize(password)
    if len(normalized) < passwords.MIN_LENGTH:
        return "too_short"
    if len(normalized) > passwords.MAX_LENGTH:
        return "too_long"
    folded = normalized.casefold()
    context = (user.username, user.given_name, user.family_name, user.email)
    local_part = (user.email or "").partition("@")[0]
    for word in (*context, local_part):
        if word and len(word) >= 3 and folded == passwords.normalize(word).casefold():
            return "context"
    if is_blocked(normalized):
        return "blocked"
    if password != confirm:
        return "mismatch"
    if passwords.verify_password(password, user.password_hash):
        return "same"
    try:
        passwords.check_policy(password, context=context)
    except passwords.PasswordRejected:
        return "blocked"
    return None


@dataclass(frozen=True)
class NewPassword:
    """A new password checked and hashed: why it may not be used, or its hash."""

    problem: str | None
    hash: str | None = None


def prepare_new_password(user: User, password: str, confirm: str) -> NewPassword:
    """`password_problem`, then the hash: run with no transaction open, since each is argon2id
    work (the "same as the current one" check verifies, then the new one is hashed)."""
    problem = password_problem(user, password, confirm)
    return NewPassword(problem, None if problem else passwords.hash_password(password))


def change_password(session: Session, user: User, password_hash: str, *, reason: str) -> None:
    """Store a new password's hash (from `prepare_new_password`); the citizen no longer has to
    change it."""
    user.password_hash = password_hash
    user.password_changed_at = datetime.now(UTC)
    user.must_change_password = False
    session.flush()


def void_reset_links(session: Session, user_id: int) -> int:
    """Use up every password-reset link of a citizen not used yet; returns how many there were
    (of two simultaneous uses of one link, exactly one sees it)."""
    used = session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
        .values(used_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(used, "rowcount", 0) or 0)
