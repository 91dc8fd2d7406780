"""Dynamic registration's credentials (RFC 7591 §3, RFC 7592 §3).

Initial access tokens let an e-service register itself; an administrator issues them with a
number of uses and an expiry. Each registration gets a registration access token to read,
update or delete its own entry later. Only SHA-256 hashes of both are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session

from idp import events
from idp.db.models import Client, InitialAccessToken
from idp.security import hash_secret, random_token
from idp.services.errors import InvalidInput

MAX_USES = 1000
MAX_LIFETIME = 30 * 86400
MAX_TOKEN = 512


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    uses: int
    expires_at: datetime


def issue_initial_token(
    session: Session,
    *,
    uses: int,
    expires_in: int,
    actor: str,
    note: str | None = None,
) -> IssuedToken:
    if not 1 <= uses <= MAX_USES:
        raise InvalidInput(f"uses must be between 1 and {MAX_USES}")
    if not 60 <= expires_in <= MAX_LIFETIME:
        raise InvalidInput(f"expires-in must be between 60 and {MAX_LIFETIME} seconds")
    note = (note or "").strip()[:200] or None
    token = random_token(32)
    now = datetime.now(UTC)
    row = InitialAccessToken(
        token_hash=hash_secret(token),
        uses_left=uses,
        created_by=actor[:200],
        note=note,
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in),
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        "admin.initial_token_issued",
        actor=actor,
        token_id=row.id,
        uses=uses,
        expires_at=row.expires_at.isoformat(),
        note=note,
    )
    return IssuedToken(token, uses, row.expires_at)


def _usable(token_hash: str) -> ColumnElement[bool]:
    """The initial access token with this hash, while it has uses left and is in force."""
    return and_(
        InitialAccessToken.token_hash == token_hash,
        InitialAccessToken.uses_left > 0,
        InitialAccessToken.expires_at > datetime.now(UTC),
        InitialAccessToken.revoked_at.is_(None),
    )


def initial_token_usable(session: Session, token: str) -> bool:
    """Whether an initial access token could register an e-service now (nothing is spent):
    checked before a registration's body is read."""
    if not token or len(token) > MAX_TOKEN:
        return False
    found = session.scalar(select(InitialAccessToken.id).where(_usable(hash_secret(token))))
    return found is not None


def use_initial_token(session: Session, token: str) -> int | None:
    """Spend one use of an initial access token; its id, or None if it is not valid now.
    Atomic: two registrations racing for the last use cannot both get it."""
    if not token or len(token) > MAX_TOKEN:
        return None
    token_hash = hash_secret(token)
    result = session.execute(
        update(InitialAccessToken)
        .where(_usable(token_hash))
        .values(uses_left=InitialAccessToken.uses_left - 1)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return None
    return session.scalar(
        select(InitialAccessToken.id).where(InitialAccessToken.token_hash == token_hash)
    )


def new_registration_token(client: Client) -> str:
    """Give a client a (new) registration access token; returns it (shown once)."""
    token = random_token(32)
    client.registration_token_hash = hash_secret(token)
    return token


def client_for_registration_token(session: Session, token: str) -> Client | None:
    if not token or len(token) > MAX_TOKEN:
        return None
    return session.scalar(
        select(Client).where(Client.registration_token_hash == hash_secret(token))
    )
