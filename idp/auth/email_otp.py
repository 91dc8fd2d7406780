"""One-time codes by email: an alternative second factor.

A code is 6 digits, stored only as a salted SHA-256, valid for 10 minutes, allows 5 attempts,
and is used once; a new code can be asked for after 60 seconds and replaces the previous one.
Attempts and use are counted by atomic conditional UPDATEs, so simultaneous submits cannot
exceed the limits or use a code twice.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from idp import i18n
from idp.auth import codes
from idp.db import Database
from idp.db.models import EmailCode, User
from idp.i18n import N_
from idp.mail import Mail, Mailer, MailError, mask_email

DIGITS = 6
LIFETIME = timedelta(minutes=10)
COOLDOWN = timedelta(seconds=60)
MAX_ATTEMPTS = 5
MALFORMED = N_("A code is 6 digits, for example 123456. Enter the 6 digits from the latest email.")


class Cooldown(Exception):
    """A code was sent moments ago; another may be asked for in `seconds_left` seconds."""

    def __init__(self, seconds_left: int) -> None:
        super().__init__(f"wait {seconds_left} seconds before asking for a new code")
        self.seconds_left = seconds_left


class NoEmailAddress(Exception):
    """The account has no email address to send a code to."""


@dataclass(frozen=True)
class SentCode:
    """What the page may tell: where the code went (masked) and until when it is valid."""

    masked_email: str
    expires_at: datetime
    resend_after: datetime


def message(to: str, code: str, locale: str) -> Mail:
    """The email carrying a code, in the citizen's language (English if not available)."""
    locale = i18n.from_list(locale) or "en"
    _, _n = i18n.gettext_for(locale), i18n.ngettext_for(locale)
    minutes = int(LIFETIME.total_seconds() // 60)
    text = "\n".join(
        [
            _("Your one-time code is %(code)s", code=code),
            "",
            _n(
                "It is valid for %(minutes)s minute and can be used once.",
                "It is valid for %(minutes)s minutes and can be used once.",
                minutes,
                minutes=minutes,
            ),
            _(
                "If you did not try to sign in, ignore this email and do not give the code "
                "to anyone."
            ),
            "",
        ]
    )
    return Mail(to=to, subject=_("Your one-time code"), text=text)


def well_formed(code: str) -> bool:
    """Whether `code` can be a code at all (else the page says `MALFORMED`)."""
    return codes.is_digits(code, DIGITS)


def _hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _live(
    user_id: int, purpose: str, interaction_id: str | None, now: datetime
) -> list[ColumnElement[bool]]:
    interaction = (
        EmailCode.interaction_id.is_(None)
        if interaction_id is None
        else EmailCode.interaction_id == interaction_id
    )
    return [
        EmailCode.user_id == user_id,
        EmailCode.purpose == purpose,
        interaction,
        EmailCode.used_at.is_(None),
        EmailCode.expires_at > now,
    ]


def send_code(
    database: Database,
    user_id: int,
    mailer: Mailer,
    *,
    purpose: str = "login",
    interaction_id: str | None = None,
    locale: str = "en",
    now: datetime | None = None,
) -> SentCode:
    """Send a new code to the citizen's email address (raises `Cooldown`, `NoEmailAddress`,
    or `idp.mail.MailError` when the mail system refuses it: then nothing is stored).

    The code is stored in one transaction and the email sent after it, with nothing held: a
    mail server may take seconds to answer. If it refuses, the code is deleted again."""
    with database.transaction() as session:
        user = session.get_one(User, user_id)
        sent, mail, code_id = _store_code(
            session, user, purpose=purpose, interaction_id=interaction_id, locale=locale, now=now
        )
    try:
        mailer.send(mail)
    except MailError:
        with database.transaction() as session:
            session.execute(delete(EmailCode).where(EmailCode.id == code_id))
        raise
    return sent


def _store_code(
    session: Session,
    user: User,
    *,
    purpose: str,
    interaction_id: str | None,
    locale: str,
    now: datetime | None,
) -> tuple[SentCode, Mail, int]:
    now = now or datetime.now(UTC)
    if not user.email:
        raise NoEmailAddress("this account has no email address")
    last = session.scalar(
        select(EmailCode.created_at)
        .where(EmailCode.user_id == user.id, EmailCode.purpose == purpose)
        .order_by(EmailCode.created_at.desc())
        .limit(1)
    )
    if last is not None and now - last < COOLDOWN:
        raise Cooldown(math.ceil((last + COOLDOWN - now).total_seconds()))
    # The previous code stops working: only the latest one sent is valid.
    session.execute(
        update(EmailCode)
        .where(*_live(user.id, purpose, interaction_id, now))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
    salt = secrets.token_hex(16)
    row = EmailCode(
        user_id=user.id,
        purpose=purpose,
        interaction_id=interaction_id,
        salt=salt,
        code_hash=_hash(salt, code),
        sent_to=user.email,
        attempts=0,
        created_at=now,
        expires_at=now + LIFETIME,
    )
    session.add(row)
    session.flush()
    sent = SentCode(mask_email(user.email), row.expires_at, now + COOLDOWN)
    return sent, message(user.email, code, locale), row.id


def verify(
    session: Session,
    user_id: int,
    code: str,
    *,
    interaction_id: str | None = None,
    purpose: str = "login",
    now: datetime | None = None,
) -> bool:
    """Accept the latest live code once; each try (right or wrong) uses one of its attempts."""
    now = now or datetime.now(UTC)
    row = session.execute(
        select(EmailCode.id, EmailCode.salt, EmailCode.code_hash)
        .where(*_live(user_id, purpose, interaction_id, now))
        .order_by(EmailCode.created_at.desc(), EmailCode.id.desc())
        .limit(1)
    ).one_or_none()
    candidate = codes.compact(code)
    if row is None:
        hmac.compare_digest(_hash("0" * 32, candidate), "0" * 64)
        return False
    code_id, salt, stored = row
    counted = session.execute(
        update(EmailCode)
        .where(
            EmailCode.id == code_id,
            EmailCode.used_at.is_(None),
            EmailCode.attempts < MAX_ATTEMPTS,
        )
        .values(attempts=EmailCode.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(counted, "rowcount", 0) != 1:
        return False
    if not hmac.compare_digest(_hash(salt, candidate), stored):
        return False
    used = session.execute(
        update(EmailCode)
        .where(EmailCode.id == code_id, EmailCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return getattr(used, "rowcount", 0) == 1
