"""Incremental rollups: read the events not yet counted, add them to the period tables.

The events are read in audit-chain order (`seq`): the sealer gives positions in increasing
order, under the chain head's lock, to committed events only, so no event can later appear
below the watermark (`run` seals what has committed before counting). One rollup runs at a
time: the first statement locks the `stats_state` row.

Distinct citizens are exact: each period keeps the set of citizens already counted
(`idp.stats.sets`), and a counter grows by the number of citizens a batch adds to a set. New
citizens likewise: those a batch adds to the set of everyone who ever signed in to the e-service,
counted on the day of their first sign-in in the batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from pyroaring import BitMap64
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from idp import events
from idp.db.inserts import upsert
from idp.db.models import Event, Interaction, StatsCount, StatsState
from idp.runtime import Runtime
from idp.stats import rules, sets
from idp.stats.periods import PERIODS, start_of

STATE_ID = 1
BATCH = 20000
ABANDONED_BATCH = 5000

CountKey = tuple[str, date, str, str, str]


def _lock_state(db: Session) -> StatsState:
    """The rollup's state row, locked for this transaction (made the first time)."""
    touched = db.execute(
        update(StatsState)
        .where(StatsState.id == STATE_ID)
        .values(updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if not int(getattr(touched, "rowcount", 0) or 0):
        db.execute(
            upsert(db, StatsState)
            .values(id=STATE_ID, last_seq=0, updated_at=datetime.now(UTC))
            .on_conflict_do_nothing()
        )
    state = db.get(StatsState, STATE_ID, populate_existing=True)
    assert state is not None
    return state


def _event_day(at: datetime, type: str, data: dict[str, Any]) -> date:
    if type == "signin.abandoned" and isinstance(data.get("started"), str):
        try:
            return datetime.fromisoformat(data["started"]).date()
        except ValueError:
            pass
    return at.date()


def _add_counts(db: Session, counts: dict[CountKey, int]) -> None:
    if not counts:
        return
    statement = upsert(db, StatsCount)
    statement = statement.on_conflict_do_update(
        index_elements=["period", "start", "client_id", "metric", "dim"],
        set_={"value": StatsCount.value + statement.excluded.value},
    )
    db.execute(
        statement,
        [
            {"period": p, "start": s, "client_id": c, "metric": m, "dim": d, "value": n}
            for (p, s, c, m, d), n in counts.items()
        ],
    )


def apply(db: Session, rows: Iterable[Sequence[Any]]) -> int:
    """Add events `(at, type, outcome, client_id, user_id, data)` to the rollups."""
    # Gathered by day first, then spread over the periods holding each day.
    by_day: dict[tuple[date, str, str, str], int] = defaultdict(int)
    citizens_by_day: dict[tuple[date, str, str], set[int]] = defaultdict(set)
    first: dict[tuple[str, int], date] = {}
    read = 0
    for at, type, outcome, client_id, user_id, data in rows:
        read += 1
        values = data or {}
        found = rules.contribution(type, outcome, client_id, user_id, values)
        if not (found.counts or found.distinct or found.first):
            continue
        day = _event_day(at, type, values)
        for client, metric, dim in found.counts:
            by_day[(day, client, metric, dim)] += 1
        for client, metric, user in found.distinct:
            citizens_by_day[(day, client, metric)].add(user)
        for key in found.first:
            if key not in first or day < first[key]:
                first[key] = day
    counts: dict[CountKey, int] = defaultdict(int)
    for (day, client, metric, dim), value in by_day.items():
        for period in PERIODS:
            counts[(period, start_of(period, day), client, metric, dim)] += value
    added: dict[sets.Key, BitMap64] = defaultdict(BitMap64)
    for (day, client, metric), users in citizens_by_day.items():
        for period in PERIODS:
            added[(period, start_of(period, day), client, metric)].update(users)
    ever_keys = {(sets.EVER_PERIOD, sets.EVER, client, "citizens") for client, _ in first}
    stored = sets.load(db, [*added, *ever_keys])
    changed: dict[sets.Key, BitMap64] = {}
    for cell, entering in added.items():
        members = stored.setdefault(cell, BitMap64())
        before = len(members)
        members |= entering
        if len(members) > before:
            counts[(*cell, "")] += len(members) - before
            changed[cell] = members
    for (client, user), day in first.items():
        ever = (sets.EVER_PERIOD, sets.EVER, client, "citizens")
        members = stored.setdefault(ever, BitMap64())
        if user in members:
            continue
        members.add(user)
        changed[ever] = members
        for period in PERIODS:
            counts[(period, start_of(period, day), client, "new_citizens", "")] += 1
    sets.save(db, changed)
    _add_counts(db, counts)
    return read


def record_abandoned(db: Session, state: StatsState, now: datetime) -> int:
    """An event for each e-service sign-in that expired unfinished since the last run."""
    query = select(Interaction).where(
        Interaction.expires_at <= now,
        Interaction.completed_at.is_(None),
        ~Interaction.client_id.startswith("idp:"),
    )
    if state.abandoned_until is not None:
        query = query.where(Interaction.expires_at > state.abandoned_until)
    found = list(db.scalars(query.order_by(Interaction.expires_at).limit(ABANDONED_BATCH)))
    for interaction in found:
        amr = interaction.amr or []
        step = (
            "password" if "pwd" not in amr else "second_factor" if "otp" not in amr else "consent"
        )
        events.record(
            db,
            "signin.abandoned",
            outcome="abandoned",
            user_id=interaction.user_id,
            client_id=interaction.client_id,
            step=step,
            started=interaction.created_at.isoformat(),
        )
    if len(found) == ABANDONED_BATCH:
        state.abandoned_until = found[-1].expires_at
    else:
        state.abandoned_until = now
    return len(found)


def step(db: Session, *, batch: int = BATCH, now: datetime | None = None) -> tuple[int, bool]:
    """Count the next `batch` chain positions. Returns (events counted, more to do)."""
    state = _lock_state(db)
    abandoned = record_abandoned(db, state, now or datetime.now(UTC))
    head = db.scalar(select(func.max(Event.seq))) or 0
    last = state.last_seq
    if head <= last:
        return 0, abandoned > 0
    upto = min(head, last + batch)
    rows = db.execute(
        select(Event.at, Event.type, Event.outcome, Event.client_id, Event.user_id, Event.data)
        .where(Event.seq > last, Event.seq <= upto, Event.type.in_(rules.TYPES))
        .order_by(Event.seq)
    )
    counted = apply(db, rows)
    state.last_seq = upto
    return counted, upto < head or abandoned > 0


def run(runtime: Runtime, *, batch: int = BATCH, now: datetime | None = None) -> int:
    """Bring the rollups up to date; one transaction per batch. Returns events counted."""
    from idp.audit import sealer

    total = 0
    while True:
        # Counted in chain order: seal what has committed first (the previous step's
        # `signin.abandoned` events included).
        sealer.seal_all(runtime.db)
        with runtime.db.transaction() as db:
            counted, more = step(db, batch=batch, now=now)
        total += counted
        if not more:
            return total
