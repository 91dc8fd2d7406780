"""The audit log as administrative actions: search, verify, export, prune."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from idp import events
from idp.audit import chain, integrity
from idp.config import Settings
from idp.db.models import Event
from idp.i18n import N_
from idp.services.errors import InvalidInput

MAX_PAGE = 200
EVENT_TYPE = re.compile(r"^[a-z0-9_.]{1,64}$")


def parse_instant(value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """`YYYY-MM-DD` (the start of that day, UTC; its end with `end_of_day`) or an ISO 8601
    date-time (UTC when no offset is given)."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(N_("'%(value)s' is not a date (YYYY-MM-DD)"), value=text) from None
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            N_("'%(value)s' is not a date (YYYY-MM-DD) or a date-time"), value=text
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Filters:
    """What the audit view and API filter on; every field optional."""

    type: str | None = None  # an event type, or a prefix ending in "." (e.g. "admin.")
    actor: str | None = None
    user_id: int | None = None
    client_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(statement: Select[Any], filters: Filters) -> Select[Any]:
    if filters.type:
        if not EVENT_TYPE.fullmatch(filters.type):
            raise InvalidInput(N_("event type may hold only a-z, 0-9, '_' and '.'"))
        if filters.type.endswith("."):
            statement = statement.where(Event.type.startswith(filters.type, autoescape=True))
        else:
            statement = statement.where(Event.type == filters.type)
    if filters.actor:
        statement = statement.where(Event.actor == filters.actor[:200])
    if filters.user_id is not None:
        statement = statement.where(Event.user_id == filters.user_id)
    if filters.client_id:
        statement = statement.where(Event.client_id == filters.client_id[:128])
    if filters.outcome:
        statement = statement.where(Event.outcome == filters.outcome[:32])
    if filters.since:
        statement = statement.where(Event.at >= filters.since)
    if filters.until:
        statement = statement.where(Event.at < filters.until)
    return statement


def search(
    session: Session, filters: Filters, *, limit: int = 50, offset: int = 0
) -> tuple[list[Event], int]:
    """A page of entries, newest first, and how many match in all."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    total = session.scalar(_filtered(select(func.count(Event.id)), filters)) or 0
    statement = _filtered(select(Event), filters).order_by(Event.at.desc(), Event.id.desc())
    return list(session.scalars(statement.limit(limit).offset(offset))), int(total)


def describe(entry: Event) -> dict[str, Any]:
    return {
        "id": entry.id,
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "type": entry.type,
        "outcome": entry.outcome,
        "actor": entry.actor,
        "user_id": entry.user_id,
        "client_id": entry.client_id,
        "ip": entry.ip,
        "request_id": entry.request_id,
        "data": entry.data or {},
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def verify(session: Session) -> integrity.Verification:
    """Seal what has committed so far, then check the whole chain (in `session`'s transaction,
    which holds the chain head until it ends)."""
    chain.seal(session)
    return integrity.verify(session)


def seal(session: Session) -> int:
    """Seal the committed entries not in the chain yet; how many."""
    return chain.seal(session)


def export(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Entries in chain order, with their hashes (so a copy can be checked elsewhere); what
    has committed so far is sealed first."""
    chain.seal(session)
    last = -1
    while True:
        statement = select(Event).where(Event.seq > last)
        if since is not None:
            statement = statement.where(Event.at >= since)
        if until is not None:
            statement = statement.where(Event.at < until)
        batch = list(session.scalars(statement.order_by(Event.seq).limit(integrity.BATCH)))
        if not batch:
            return
        for entry in batch:
            yield describe(entry)
            session.expunge(entry)
        last = int(batch[-1].seq or last)


def prune(
    session: Session, settings: Settings, *, actor: str, now: datetime | None = None
) -> integrity.Pruned:
    """Remove entries older than `audit_retention_days`; the chain stays verifiable."""
    before = (now or datetime.now(UTC)) - timedelta(days=settings.audit_retention_days)
    try:
        pruned = integrity.prune(session, before)
    except integrity.ChainBroken as broken:
        raise InvalidInput(
            f"the audit chain does not verify ({broken.verification.problem}); nothing was pruned"
        ) from None
    events.record(
        session,
        "admin.audit_pruned",
        actor=actor,
        removed=pruned.removed,
        before=before.isoformat(),
        anchor_seq=pruned.anchor_seq,
        anchor_hash=pruned.anchor_hash,
    )
    return pruned
