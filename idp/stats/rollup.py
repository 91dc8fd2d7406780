"""Incremental rollups: read the events not yet counted, add them to the period tables.

The events are read in audit-chain order (`seq`): the sealer gives positions in increasing
order, under the chain head's lock, to committed events only, so no event can later appear
below the watermark (`run` seals what has committed before counting). One rollup runs at a
time: the first statement locks the `stats_state` row.

Distinct citizens are exact: each period keeps the set of citizens already counted
(`stats_seen`, one row per citizen, e-service, metric and period), and a counter grows only when
a citizen enters a set. New citizens likewise (`stats_first_seen`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from idp import events
from idp.db.models import (
    Event,
    Interaction,
    StatsCount,
    StatsFirstSeen,
    StatsSeen,
    StatsState,
)
from idp.runtime import Runtime
from idp.stats import rules
from idp.stats.periods import PERIODS, start_of

STATE_ID = 1
BATCH = 20000
ABANDONED_BATCH = 5000

CountKey = tuple[str, date, str, str, str]


def _insert(db: Session) -> Any:
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _lock_state(db: Session) -> StatsState:
    """The rollup's state row, locked for this transaction (made the first time)."""
    touched = db.execute(
        update(StatsState)
        .where(StatsState.id == STATE_ID)
        .values(updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if not int(getattr(touched, "rowcount", 0) or 0):
        insert = _insert(db)
        db.execute(
            insert(StatsState)
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


_FIRST_COLUMNS = ("client_id", "user_id", "day")
_SEEN_COLUMNS = ("period", "start", "client_id", "metric", "user_id")
# PostgreSQL: one statement per batch (arrays unnested), returning only the rows it added.
FIRST_SQL = text(
    "INSERT INTO stats_first_seen (client_id, user_id, day) "
    "SELECT * FROM unnest(CAST(:a AS text[]), CAST(:b AS bigint[]), CAST(:c AS date[])) "
    "ON CONFLICT DO NOTHING RETURNING client_id, day"
)
SEEN_SQL = text(
    "INSERT INTO stats_seen (period, start, client_id, metric, user_id) "
    "SELECT * FROM unnest(CAST(:a AS text[]), CAST(:b AS date[]), CAST(:c AS text[]), "
    "CAST(:d AS text[]), CAST(:e AS bigint[])) "
    "ON CONFLICT DO NOTHING RETURNING period, start, client_id, metric"
)

COUNTS_SQL = text(
    "INSERT INTO stats_counts (period, start, client_id, metric, dim, value) "
    "SELECT * FROM unnest(CAST(:a AS text[]), CAST(:b AS date[]), CAST(:c AS text[]), "
    "CAST(:d AS text[]), CAST(:e AS text[]), CAST(:f AS bigint[])) "
    "ON CONFLICT (period, start, client_id, metric, dim) "
    "DO UPDATE SET value = stats_counts.value + EXCLUDED.value"
)


def _add_new(
    db: Session, sql: Any, rows: list[tuple[Any, ...]], model: Any, columns: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    """Insert the rows not there yet; return what the statement returns for those added."""
    if db.get_bind().dialect.name == "postgresql":
        arrays = {name: [row[i] for row in rows] for i, name in enumerate("abcde"[: len(columns)])}
        return [tuple(r) for r in db.execute(sql, arrays)]
    statement = _insert(db)(model).on_conflict_do_nothing()
    if model is StatsFirstSeen:
        statement = statement.returning(StatsFirstSeen.client_id, StatsFirstSeen.day)
    else:
        statement = statement.returning(
            StatsSeen.period, StatsSeen.start, StatsSeen.client_id, StatsSeen.metric
        )
    params = [dict(zip(columns, row, strict=True)) for row in rows]
    return [tuple(r) for r in db.execute(statement, params)]


def apply(db: Session, rows: Iterable[Sequence[Any]]) -> int:
    """Add events `(at, type, outcome, client_id, user_id, data)` to the rollups."""
    counts: dict[CountKey, int] = defaultdict(int)
    seen: set[tuple[str, date, str, str, int]] = set()
    first: dict[tuple[str, int], date] = {}
    read = 0
    for at, type, outcome, client_id, user_id, data in rows:
        read += 1
        found = rules.contribution(type, outcome, client_id, user_id, data or {})
        if not (found.counts or found.distinct or found.first):
            continue
        day = _event_day(at, type, data or {})
        for period in PERIODS:
            start = start_of(period, day)
            for client, metric, dim in found.counts:
                counts[(period, start, client, metric, dim)] += 1
            for client, metric, user in found.distinct:
                seen.add((period, start, client, metric, user))
        for key in found.first:
            if key not in first or day < first[key]:
                first[key] = day
    insert = _insert(db)
    if first:
        firsts = [(c, u, d) for (c, u), d in first.items()]
        for client, day in _add_new(db, FIRST_SQL, firsts, StatsFirstSeen, _FIRST_COLUMNS):
            for period in PERIODS:
                counts[(period, start_of(period, day), client, "new_citizens", "")] += 1
    if seen:
        for period, start, client, metric in _add_new(
            db, SEEN_SQL, list(seen), StatsSeen, _SEEN_COLUMNS
        ):
            counts[(period, start, client, metric, "")] += 1
    if counts and db.get_bind().dialect.name == "postgresql":
        keys = list(counts)
        db.execute(
            COUNTS_SQL,
            {name: [key[i] for key in keys] for i, name in enumerate(("a", "b", "c", "d", "e"))}
            | {"f": [counts[key] for key in keys]},
        )
    elif counts:
        statement = insert(StatsCount)
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
