"""Checking and shortening the audit chain.

`verify` walks the chain from its anchor to its head and reports the first broken link: an
entry whose hash no longer matches its fields (edited), a position missing (deleted), or a
head that the last entry does not reach (the newest entries deleted). `prune` removes the
oldest entries and records the position and hash of the last one removed as the new anchor,
so that what remains still verifies.

Entries not sealed yet (`seq` NULL, see `idp.audit.chain`) are not part of the chain: `verify`
counts them as `pending`; callers seal first (`idp.services.audit.verify` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from idp.audit.chain import GENESIS, HEAD_ID, entry_hash, head, lock_head, pending, seal
from idp.db.models import AuditChainHead, Event

BATCH = 1000


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    anchor_seq: int
    anchor_hash: str
    problem: str | None = None
    seq: int | None = None
    event_id: int | None = None
    pending: int = 0  # committed entries the sealer has not reached yet

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def chain_entries(session: Session, *, after: int, through: int | None = None) -> Iterator[Event]:
    """Sealed entries in chain order, read in batches."""
    last = after
    while True:
        statement = select(Event).where(Event.seq > last)
        if through is not None:
            statement = statement.where(Event.seq <= through)
        batch = list(session.scalars(statement.order_by(Event.seq).limit(BATCH)))
        if not batch:
            return
        for entry in batch:
            yield entry
        last = int(batch[-1].seq or last)
        for entry in batch:
            session.expunge(entry)


def verify(session: Session) -> Verification:
    """The state of the chain: OK, or the first broken link."""
    top = head(session)
    head_seq = top.seq if top else 0
    head_hash = top.last_hash if top else GENESIS
    anchor_seq = top.anchor_seq if top else 0
    anchor_hash = top.anchor_hash if top else GENESIS
    waiting = pending(session)

    def result(
        checked: int, problem: str | None = None, entry: Event | None = None, seq: int | None = None
    ) -> Verification:
        return Verification(
            ok=problem is None,
            checked=checked,
            head_seq=head_seq,
            head_hash=head_hash,
            anchor_seq=anchor_seq,
            anchor_hash=anchor_hash,
            problem=problem,
            seq=entry.seq if entry is not None else seq,
            event_id=entry.id if entry is not None else None,
            pending=waiting,
        )

    early = session.scalar(
        select(Event).where(Event.seq <= anchor_seq).order_by(Event.seq).limit(1)
    )
    if early is not None:
        return result(0, f"entry {early.seq} lies before the chain's anchor", early)
    expected, prev, checked = anchor_seq + 1, anchor_hash, 0
    for entry in chain_entries(session, after=anchor_seq, through=head_seq):
        if entry.seq != expected:
            return result(checked, f"entry {expected} is missing (deleted)", seq=expected)
        if entry.prev_hash != prev:
            return result(checked, f"entry {expected} does not link to the entry before it", entry)
        if entry_hash(entry, prev) != entry.hash:
            return result(checked, f"entry {expected} was altered after it was written", entry)
        prev = entry.hash
        expected += 1
        checked += 1
    if expected - 1 != head_seq:
        return result(
            checked, f"entries {expected} to {head_seq} are missing (deleted)", seq=expected
        )
    if prev != head_hash:
        return result(checked, "the last entry does not match the chain head", seq=head_seq)
    return result(checked)


@dataclass(frozen=True)
class Pruned:
    removed: int
    anchor_seq: int
    anchor_hash: str


class ChainBroken(Exception):
    """Pruning refused: the chain does not verify (pruning would erase the evidence)."""

    def __init__(self, verification: Verification) -> None:
        super().__init__(verification.problem)
        self.verification = verification


def prune(session: Session, before: datetime) -> Pruned:
    """Remove the oldest entries written before `before` (a prefix of the chain) and anchor
    the chain at the last one removed. Refuses when the chain does not verify."""
    lock_head(session)
    seal(session)  # what has committed so far, so that no old entry is left unsealed
    found = verify(session)
    if not found.ok:
        raise ChainBroken(found)
    first_kept = session.scalar(
        select(func.min(Event.seq)).where(Event.seq > found.anchor_seq, Event.at >= before)
    )
    cut = int(first_kept) - 1 if first_kept is not None else found.head_seq
    if cut <= found.anchor_seq:
        return Pruned(0, found.anchor_seq, found.anchor_hash)
    anchor_hash = session.scalar(select(Event.hash).where(Event.seq == cut))
    assert anchor_hash is not None
    removed = session.execute(
        delete(Event).where(Event.seq <= cut).execution_options(synchronize_session=False)
    )
    session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(anchor_seq=cut, anchor_hash=anchor_hash)
    )
    return Pruned(int(getattr(removed, "rowcount", 0) or 0), cut, anchor_hash)
