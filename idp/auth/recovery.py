"""Recovery codes: ten single-use codes a citizen keeps on paper for when the phone is lost.

Each code is 12 characters from a 32-letter alphabet without look-alikes (60 bits), shown as
`xxxx-xxxx-xxxx`; only a salted SHA-256 is stored. A code is used up by an atomic conditional
UPDATE, so it works once even when submitted twice at the same moment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from urllib.parse import quote

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from idp.db.models import RecoveryCode
from idp.i18n import N_

COUNT = 10
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32: no i, l, o, u
GROUPS = 3
GROUP_LENGTH = 4
LOOK_ALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})
MALFORMED = N_(
    "A recovery code is 12 letters and digits, shown as xxxx-xxxx-xxxx. Enter one of the "
    "recovery codes you saved."
)


def _new_code() -> str:
    groups = ("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS))
    return "-".join(groups)


def normalize(code: str) -> str:
    """As typed: spaces, dashes and case ignored; o, i, l read as 0, 1, 1."""
    compact = "".join(ch for ch in code.lower() if not ch.isspace() and ch not in "-_.")
    return compact.translate(LOOK_ALIKES)


def well_formed(code: str) -> bool:
    """Whether `code` can be a recovery code at all: 12 characters of the alphabet, as typed
    (else the page says `MALFORMED`)."""
    typed = normalize(code)
    return len(typed) == GROUPS * GROUP_LENGTH and all(ch in ALPHABET for ch in typed)


def _hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{normalize(code)}".encode()).hexdigest()


def generate(session: Session, user_id: int) -> list[str]:
    """Ten new codes, replacing all earlier ones; shown once, stored hashed."""
    session.execute(
        delete(RecoveryCode)
        .where(RecoveryCode.user_id == user_id)
        .execution_options(synchronize_session=False)
    )
    codes = [_new_code() for _ in range(COUNT)]
    for code in codes:
        salt = secrets.token_hex(16)
        session.add(RecoveryCode(user_id=user_id, salt=salt, code_hash=_hash(salt, code)))
    session.flush()
    return codes


def download_href(codes: list[str], heading: str) -> str:
    """The codes as a text file to save: a `data:` address for a download link, `heading`
    then one code a line."""
    text = heading + "\n\n" + "\n".join(codes) + "\n"
    return "data:text/plain;charset=utf-8," + quote(text)


def consume(session: Session, user_id: int, code: str, *, now: datetime | None = None) -> bool:
    """Use up the matching unused code; False if none matches (or it was just used)."""
    rows = session.execute(
        select(RecoveryCode.id, RecoveryCode.salt, RecoveryCode.code_hash).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    match: int | None = None
    for row_id, salt, stored in rows:
        if hmac.compare_digest(_hash(salt, code), stored):
            match = row_id
    if match is None:
        return False
    result = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == match, RecoveryCode.used_at.is_(None))
        .values(used_at=now or datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def remaining(session: Session, user_id: int) -> int:
    """How many unused codes the citizen has left."""
    count = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)
