"""The audit chain: every event is sealed, shortly after its transaction commits, into one
hash chain.

Each entry gets the next position (`seq`), the hash of the entry before it (`prev_hash`) and its
own hash: SHA-256 over a canonical JSON serialisation of its fields and `prev_hash`. Editing an
entry breaks its hash; deleting one breaks the link of the next (or the head, for the last).

An action only inserts its event rows, unsealed (`seq` NULL), in its own transaction: a
rolled-back action leaves no entry, and no request waits for another to append. The *sealer*
(`seal`) then gives the committed unsealed entries, in order of `id`, their positions and
hashes, in batches, one sealer at a time: its first statement updates the single
`audit_chain_head` row, which locks it on PostgreSQL until the sealer commits and takes
SQLite's one write lock. It runs every `audit_seal_interval` seconds in each serving process
(`idp.audit.sealer`), in `idp janitor` and `idp audit seal`, before `idp audit verify`, before
pruning and before the indicators' rollup. The chain's order is the order of sealing, which
follows commit order: an entry committed after a sealer ran gets a later position, whatever its
`id`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from idp.db.inserts import upsert
from idp.db.models import AuditChainHead, Event
from idp.db.types import utcnow

SEALED_COLUMNS = (
    "at",
    "type",
    "outcome",
    "actor",
    "user_id",
    "client_id",
    "ip",
    "request_id",
    "data",
)  # what an entry's hash covers besides its place in the chain
GENESIS = "0" * 64
HEAD_ID = 1
BATCH = 1000


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def canonical(entry: Event | Mapping[str, Any], prev_hash: str, seq: int | None = None) -> bytes:
    """The bytes an entry's hash covers: every field, keys sorted, no insignificant spaces.
    `seq` is the entry's position when it is being sealed (its own `seq` otherwise). `entry`
    is a row, or the values of one about to be written (`SEALED_COLUMNS`)."""
    values = entry if isinstance(entry, Mapping) else {"seq": entry.seq, **_sealed(entry)}
    fields: dict[str, Any] = {name: values.get(name) for name in SEALED_COLUMNS}
    fields.update(
        seq=values.get("seq") if seq is None else seq,
        prev_hash=prev_hash,
        at=_instant(values["at"]),
        data=values.get("data") or {},
    )
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _sealed(entry: Event) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in SEALED_COLUMNS}


def entry_hash(entry: Event | Mapping[str, Any], prev_hash: str, seq: int | None = None) -> str:
    return hashlib.sha256(canonical(entry, prev_hash, seq)).hexdigest()


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
        values = {
            "id": HEAD_ID,
            "seq": 0,
            "last_hash": GENESIS,
            "anchor_seq": 0,
            "anchor_hash": GENESIS,
        }
        session.execute(upsert(session, AuditChainHead).values(**values).on_conflict_do_nothing())
        row = session.execute(_head_statement(advance)).one()
    return int(row[0]), str(row[1])


def _try_lock_head(session: Session) -> tuple[int, str] | None:
    """Like `lock_head`, but None at once when another sealer holds the head (PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return lock_head(session)
    row = session.execute(
        select(AuditChainHead.seq, AuditChainHead.last_hash)
        .where(AuditChainHead.id == HEAD_ID)
        .with_for_update(skip_locked=True)
    ).one_or_none()
    if row is not None:
        return int(row[0]), str(row[1])
    if session.scalar(select(AuditChainHead.id).where(AuditChainHead.id == HEAD_ID)) is not None:
        return None  # locked by another sealer: it will seal what we would have
    return lock_head(session)


def seal(session: Session, *, limit: int | None = None, wait: bool = True) -> int:
    """Seal the committed unsealed entries (up to `limit`), in order of `id`, into the chain.

    Holds the head's lock until `session` commits. With `wait=False` (the background sealer)
    returns 0 at once when another sealer is at work. Returns how many were sealed."""
    if session.scalar(select(Event.id).where(Event.seq.is_(None)).limit(1)) is None:
        return 0  # nothing to seal: no lock taken, nothing written
    locked = lock_head(session) if wait else _try_lock_head(session)
    if locked is None:
        return 0
    seq, prev = locked
    sealed = 0
    while limit is None or sealed < limit:
        size = BATCH if limit is None else min(BATCH, limit - sealed)
        batch = list(
            session.scalars(select(Event).where(Event.seq.is_(None)).order_by(Event.id).limit(size))
        )
        if not batch:
            break
        rows = []
        for entry in batch:
            seq += 1
            digest = entry_hash(entry, prev, seq)
            rows.append({"id": entry.id, "seq": seq, "prev_hash": prev, "hash": digest})
            prev = digest
            session.expunge(entry)
        session.execute(update(Event), rows)  # one executemany by primary key
        sealed += len(batch)
        if len(batch) < size:
            break
    if sealed:
        session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == HEAD_ID)
            .values(seq=seq, last_hash=prev, updated_at=utcnow())
        )
    return sealed


def append(session: Session, entries: Sequence[Mapping[str, Any]]) -> int:
    """Write entries made elsewhere (a history imported, the demo's: the values of
    `SEALED_COLUMNS`) sealed at once: in the order given, after every entry sealed so far, in
    one bulk statement. Returns how many."""
    if not entries:
        return 0
    seq, prev = lock_head(session)
    rows = []
    for entry in entries:
        seq += 1
        values = {name: entry.get(name) for name in SEALED_COLUMNS}
        values["data"] = values["data"] or {}
        digest = entry_hash(values, prev, seq)
        rows.append({**values, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    # Core, not the ORM's bulk insert, which splits the rows by the columns left empty.
    table = Event.__table__
    assert isinstance(table, Table)
    session.connection().execute(insert(table), rows)
    session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(seq=seq, last_hash=prev, updated_at=utcnow())
    )
    return len(rows)


def pending(session: Session) -> int:
    """How many committed entries wait for the sealer."""
    return int(session.scalar(select(func.count(Event.id)).where(Event.seq.is_(None))) or 0)


def head(session: Session) -> AuditChainHead | None:
    return session.scalar(select(AuditChainHead).where(AuditChainHead.id == HEAD_ID))
