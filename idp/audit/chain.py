"""The audit chain: every event is sealed, when its transaction commits, into one hash chain.

Each entry gets the next position (`seq`), the hash of the entry before it (`prev_hash`) and its
own hash: SHA-256 over a canonical JSON serialisation of its fields and `prev_hash`. Editing an
entry breaks its hash; deleting one breaks the link of the next (or the head, for the last).

Sealing happens in the same transaction as the action, just before it commits, so the chain
is ordered by commit and a rolled-back action leaves no entry. Appends are serialised by the
single `audit_chain_head` row: the first statement of the seal updates that row, which locks it
on PostgreSQL (held until commit) and takes SQLite's one write lock; nobody else can then read
a stale head. The lock is held only from the seal to the commit.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import insert, inspect, select, update
from sqlalchemy.orm import Session

from idp.db.models import AuditChainHead, Event

GENESIS = "0" * 64
HEAD_ID = 1
PENDING = "idp.audit.pending"


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def canonical(entry: Event, prev_hash: str) -> bytes:
    """The bytes an entry's hash covers: every field, keys sorted, no insignificant spaces."""
    fields: dict[str, Any] = {
        "seq": entry.seq,
        "prev_hash": prev_hash,
        "at": _instant(entry.at),
        "type": entry.type,
        "outcome": entry.outcome,
        "actor": entry.actor,
        "user_id": entry.user_id,
        "client_id": entry.client_id,
        "ip": entry.ip,
        "request_id": entry.request_id,
        "data": entry.data or {},
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Event, prev_hash: str) -> str:
    return hashlib.sha256(canonical(entry, prev_hash)).hexdigest()


def track(session: Session, entry: Event) -> None:
    """Remember an event to seal when `session` commits."""
    session.info.setdefault(PENDING, []).append(entry)


def _head_statement(count: int) -> Any:
    return (
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(seq=AuditChainHead.seq + count)
        .returning(AuditChainHead.seq, AuditChainHead.last_hash)
    )


def lock_head(session: Session, advance: int = 0) -> tuple[int, str]:
    """Lock the head row for the rest of the transaction (creating it the first time) and
    move its position `advance` places on. Returns the new position and the last hash."""
    row = session.execute(_head_statement(advance)).one_or_none()
    if row is None:
        dialect = session.get_bind().dialect.name
        values = {
            "id": HEAD_ID,
            "seq": 0,
            "last_hash": GENESIS,
            "anchor_seq": 0,
            "anchor_hash": GENESIS,
        }
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            session.execute(pg_insert(AuditChainHead).values(**values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            session.execute(sqlite_insert(AuditChainHead).values(**values).on_conflict_do_nothing())
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            session.execute(insert(AuditChainHead).values(**values))
        row = session.execute(_head_statement(advance)).one()
    return int(row[0]), str(row[1])


def seal(session: Session) -> int:
    """Give every pending event of `session` its place and hashes. Returns how many."""
    pending: list[Event] = session.info.pop(PENDING, [])
    entries = []
    for entry in pending:
        state = inspect(entry)
        if (state.pending or state.persistent) and not state.deleted and entry.seq is None:
            entries.append(entry)
    if not entries:
        return 0
    last_seq, prev = lock_head(session, len(entries))
    seq = last_seq - len(entries)
    for entry in entries:
        seq += 1
        entry.seq = seq
        entry.prev_hash = prev
        entry.hash = entry_hash(entry, prev)
        prev = entry.hash
    session.execute(
        update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(last_hash=prev)
    )
    session.flush()
    return len(entries)


def head(session: Session) -> AuditChainHead | None:
    return session.scalar(select(AuditChainHead).where(AuditChainHead.id == HEAD_ID))


def _before_commit(session: Session) -> None:
    # Savepoints commit too: seal once, when the whole transaction does.
    if session.info.get(PENDING) and not session.in_nested_transaction():
        seal(session)


def _forget(session: Session) -> None:
    # A rolled-back savepoint keeps the outer transaction's events (its own are filtered out
    # by `seal`, being no longer in the session).
    if not session.in_nested_transaction():
        session.info.pop(PENDING, None)


def install() -> None:
    """Seal events on every commit of every session (idempotent)."""
    if not sa_event.contains(Session, "before_commit", _before_commit):
        sa_event.listen(Session, "before_commit", _before_commit)
        sa_event.listen(Session, "after_rollback", _forget)
