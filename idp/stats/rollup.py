"""Incremental rollups: read the events not yet counted, add them to the period tables.

The events are read in audit-chain order (`seq`): the sealer gives positions in increasing
order, under the chain head's lock, to committed events only, so no event can later appear
below the watermark (`run` seals what has committed before counting). One rollup runs at a
time: the first statement locks the `stats_state` row.

Sign-ins that wait for the citizen are counted from their requests (`interactions`), not from
audit events: anyone can make `/authorize` store one, and the audit log keeps its entries for
years. Once a request's time has run out (it has long been committed then) it counts as a
sign-in started, on the day it started, and, if unfinished, as one abandoned at the step it
reached (unless it was held for the question asked after a completed sign-in); `idp janitor`
deletes it only after that (`until` below, the same instant).

It runs in every serving process about once a minute (`idp.stats.worker`), skipping a round
when another process is at it, and in `idp janitor` and `idp stats rollup`.

Distinct citizens are exact: each period keeps the set of citizens already counted
(`idp.stats.sets`), and a counter grows by the number of citizens a batch adds to a set. New
citizens likewise: those a batch adds to the set of everyone who ever signed in to the e-service,
counted on the day of their first sign-in in the batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Any

from pyroaring import BitMap64
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from idp.auth.interactions import QUESTION
from idp.db.inserts import upsert
from idp.db.models import Event, Interaction, StatsCount, StatsState
from idp.runtime import Runtime
from idp.stats import rules, sets
from idp.stats.periods import PERIODS, start_of

STATE_ID = 1
BATCH = 20000
INTERACTION_BATCH = 5000

CountKey = tuple[str, date, str, str, str]
Row = tuple[datetime, str, str, str | None, int | None, dict[str, Any]]


def _lock_state(db: Session, *, wait: bool = True) -> StatsState | None:
    """The rollup's state row, locked for this transaction (made the first time). With
    `wait=False` (the background count), None at once when another process holds it
    (PostgreSQL; on SQLite the transaction already holds the database's one write lock)."""
    if not wait and db.get_bind().dialect.name == "postgresql":
        found = db.scalar(
            select(StatsState)
            .where(StatsState.id == STATE_ID)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if found is not None:
            found.updated_at = datetime.now(UTC)
            return found
        if db.scalar(select(StatsState.id).where(StatsState.id == STATE_ID)) is not None:
            return None  # another process is counting: it counts what we would have
    touch = (
        update(StatsState)
        .where(StatsState.id == STATE_ID)
        .values(updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if not int(getattr(db.execute(touch), "rowcount", 0) or 0):
        db.execute(
            upsert(db, StatsState)
            .values(id=STATE_ID, last_seq=0, updated_at=datetime.now(UTC))
            .on_conflict_do_nothing()
        )
        # Made by us, or by another process at the same moment (then "do nothing" waited for
        # it and took no lock): lock it now, after whoever holds it.
        db.execute(touch)
    state = db.get(StatsState, STATE_ID, populate_existing=True)
    assert state is not None
    return state


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
        day = found.day or at.date()
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


def ended_interactions(db: Session, state: StatsState, until: datetime) -> tuple[list[Row], bool]:
    """What the e-service sign-in requests whose time ran out before `until`, and that were not
    counted yet, add (as rows for `apply`): a sign-in started and, if unfinished, one abandoned
    at the step it reached. Also whether more such requests are left for another batch.

    The state's watermark (`abandoned_until`) is the expiry time before which every request
    has been counted; a batch ends before a run of equal expiry times, never inside one."""
    since = state.abandoned_until
    query = select(Interaction).where(
        Interaction.expires_at < until, ~Interaction.client_id.startswith("idp:")
    )
    if since is not None:
        query = query.where(Interaction.expires_at >= since)
    query = query.order_by(Interaction.expires_at, Interaction.id)
    found = list(db.scalars(query.limit(INTERACTION_BATCH + 1)))
    more = len(found) > INTERACTION_BATCH
    if more:
        until = found[INTERACTION_BATCH].expires_at
        found = [row for row in found if row.expires_at < until]
        if not found:  # a whole batch with one expiry time: count them all, step past it
            found = list(db.scalars(query.where(Interaction.expires_at == until)))
            until += timedelta(microseconds=1)
    if since is None or until > since:
        state.abandoned_until = until
    rows: list[Row] = []
    for interaction in found:
        client_id = interaction.client_id
        rows.append((interaction.created_at, "signin.started", "success", client_id, None, {}))
        # A sign-in held for our question was completed (`signin.completed`): not abandoned.
        if interaction.completed_at is None and not (interaction.signin or {}).get(QUESTION):
            amr = interaction.amr or []
            reached = (
                "password"
                if "pwd" not in amr
                else "second_factor"
                if "otp" not in amr
                else "consent"
            )
            data = {"step": reached}
            user_id = interaction.user_id
            rows.append(
                (interaction.created_at, "signin.abandoned", "abandoned", client_id, user_id, data)
            )
    return rows, more


def step(
    db: Session, *, batch: int = BATCH, now: datetime | None = None, wait: bool = True
) -> tuple[int, bool]:
    """Count the next `batch` chain positions and the sign-in requests whose time ran out
    before `now`. Returns (events read and requests' contributions counted, more to do);
    with `wait=False`, (0, False) at once when another process is counting."""
    state = _lock_state(db, wait=wait)
    if state is None:
        return 0, False
    ended, more_ended = ended_interactions(db, state, now or datetime.now(UTC))
    head = db.scalar(select(func.max(Event.seq))) or 0
    last = state.last_seq
    upto = min(head, last + batch)
    rows: Iterable[Sequence[Any]] = ()
    if upto > last:
        rows = db.execute(
            select(Event.at, Event.type, Event.outcome, Event.client_id, Event.user_id, Event.data)
            .where(Event.seq > last, Event.seq <= upto, Event.type.in_(rules.TYPES))
            .order_by(Event.seq)
        )
        state.last_seq = upto
    counted = apply(db, chain(ended, rows))
    return counted, upto < head or more_ended


def run(
    runtime: Runtime, *, batch: int = BATCH, now: datetime | None = None, wait: bool = True
) -> int:
    """Bring the rollups up to date; one transaction per batch. Returns events counted.
    With `wait=False` (the background count) it leaves the work to another process that is
    sealing or counting at the moment."""
    from idp.audit import sealer

    total = 0
    while True:
        # Counted in chain order: seal what has committed first.
        sealer.seal_all(runtime.db, wait=wait)
        with runtime.db.transaction() as db:
            counted, more = step(db, batch=batch, now=now, wait=wait)
        total += counted
        if not more:
            return total
