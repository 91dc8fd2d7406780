"""The outbox of back-channel logouts: one row per e-service to tell, written in the same
transaction that ends the session, so no logout is ever lost between commit and delivery.

Any number of processes may deliver: a row is *claimed* by one conditional `UPDATE` (`... WHERE
id = :id AND next_attempt_at <= :now`) that also moves `next_attempt_at` a lease ahead, so of
two processes exactly one gets it, and a process that dies mid-delivery only delays it by the
lease. A failed delivery is retried with exponential backoff until `backchannel_logout_retry_for`
has passed since the logout; then it is given up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from idp import events
from idp.config import Settings
from idp.db.models import LogoutDelivery

RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def lease(settings: Settings) -> timedelta:
    """How long a claimed row is left alone by the other processes."""
    return timedelta(seconds=2 * settings.backchannel_logout_timeout + 30)


def backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failure: 30 s, 1 min, 2 min, ... at most 1 h."""
    doublings = max(0, min(attempts - 1, 20))
    wait: timedelta = RETRY_FIRST * (2**doublings)
    return min(wait, RETRY_MAX)


def enqueue(
    db: Session,
    *,
    client_id: str,
    user_id: int | None,
    sid: str | None,
    sub: str | None,
    reason: str,
    now: datetime,
) -> LogoutDelivery:
    row = LogoutDelivery(
        client_id=client_id,
        user_id=user_id,
        sid=sid,
        sub=sub,
        reason=reason[:32],
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    db.add(row)
    db.flush()
    return row


def due(db: Session, now: datetime, *, limit: int = 100) -> list[int]:
    """Ids of deliveries whose next attempt is due (oldest first)."""
    return list(
        db.scalars(
            select(LogoutDelivery.id)
            .where(LogoutDelivery.next_attempt_at.is_not(None))
            .where(LogoutDelivery.next_attempt_at <= now)
            .order_by(LogoutDelivery.next_attempt_at, LogoutDelivery.id)
            .limit(limit)
        )
    )


def claim(db: Session, delivery_id: int, now: datetime, settings: Settings) -> bool:
    """Take one due delivery for this process; False if another process has it or it is done."""
    won = db.execute(
        update(LogoutDelivery)
        .where(
            LogoutDelivery.id == delivery_id,
            LogoutDelivery.next_attempt_at.is_not(None),
            LogoutDelivery.next_attempt_at <= now,
        )
        .values(
            next_attempt_at=now + lease(settings),
            leased_until=now + lease(settings),
            attempts=LogoutDelivery.attempts + 1,
            last_attempt_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(won) == 1


def make_due(db: Session, now: datetime, settings: Settings) -> int:
    """Bring every waiting delivery forward to now (after an e-service's outage is fixed);
    deliveries in progress elsewhere keep their lease."""
    moved = db.execute(
        update(LogoutDelivery)
        .where(
            LogoutDelivery.next_attempt_at.is_not(None),
            LogoutDelivery.next_attempt_at > now,
            or_(LogoutDelivery.leased_until.is_(None), LogoutDelivery.leased_until <= now),
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(moved)


def delivered(db: Session, row: LogoutDelivery, now: datetime) -> None:
    row.leased_until = None
    row.delivered_at = now
    row.next_attempt_at = None
    row.last_error = None
    events.record(
        db,
        "logout.backchannel_delivered",
        user_id=row.user_id,
        client_id=row.client_id,
        sid=row.sid,
        attempts=row.attempts,
    )


def failed(
    db: Session,
    row: LogoutDelivery,
    now: datetime,
    settings: Settings,
    *,
    error: str,
    retry: bool,
) -> bool:
    """Record a failed attempt; schedule the next one, or give up. True if given up."""
    row.leased_until = None
    row.last_error = error[:200]
    later = now + backoff(row.attempts)
    deadline = row.created_at + timedelta(seconds=settings.backchannel_logout_retry_for)
    if retry and later <= deadline:
        row.next_attempt_at = later
        events.record(
            db,
            "logout.backchannel_failed",
            outcome="failure",
            user_id=row.user_id,
            client_id=row.client_id,
            sid=row.sid,
            attempts=row.attempts,
            error=row.last_error,
            retry_at=later.isoformat(),
        )
        return False
    row.next_attempt_at = None
    row.abandoned_at = now
    events.record(
        db,
        "logout.backchannel_abandoned",
        outcome="failure",
        user_id=row.user_id,
        client_id=row.client_id,
        sid=row.sid,
        attempts=row.attempts,
        error=row.last_error,
    )
    return True
