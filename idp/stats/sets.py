"""The sets of citizens behind the exact distinct counts, kept as Roaring bitmaps.

One set per period, e-service and metric (`stats_sets`): adding a batch of citizens to a set
tells exactly how many were not in it yet, and the unique citizens of any range are the size
of the union of its sets. A set is a few bytes per citizen at most (Roaring compresses runs
and dense ranges), read and written whole: a batch touches only the sets of the days it covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from pyroaring import BitMap64
from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.orm import Session

from idp.db.inserts import upsert
from idp.db.models import StatsSet
from idp.stats.periods import next_start, start_of

Key = tuple[str, date, str, str]  # period, start, client_id, metric
EVER_PERIOD = "e"  # everyone who ever signed in to an e-service: new vs returning
EVER = date(1970, 1, 1)
CHUNK = 500  # keys per SELECT (SQLite allows 32766 parameters)


def load(db: Session, keys: Iterable[Key]) -> dict[Key, BitMap64]:
    """The stored sets among `keys` (a key with no set yet is left out)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[Key, BitMap64] = {}
    columns = (StatsSet.period, StatsSet.start, StatsSet.client_id, StatsSet.metric)
    for offset in range(0, len(wanted), CHUNK):
        chunk = wanted[offset : offset + CHUNK]
        query = select(*columns, StatsSet.members).where(tuple_(*columns).in_(chunk))
        for period, start, client_id, metric, members in db.execute(query):
            found[(period, start, client_id, metric)] = BitMap64.deserialize(members)
    return found


def save(db: Session, sets: Mapping[Key, BitMap64]) -> None:
    """Store these sets, replacing any stored under the same keys."""
    if not sets:
        return
    statement = upsert(db, StatsSet)
    statement = statement.on_conflict_do_update(
        index_elements=["period", "start", "client_id", "metric"],
        set_={"members": statement.excluded.members},
    )
    rows = [
        {
            "period": period,
            "start": start,
            "client_id": client_id,
            "metric": metric,
            "members": members.serialize(),
        }
        for (period, start, client_id, metric), members in sets.items()
    ]
    db.execute(statement, rows)


def _covering(since: date, until: date) -> ColumnElement[bool]:
    """The sets that cover `since` through `until` once: those of the whole months in the
    range and of the days outside them."""
    first = start_of("m", since) if since.day == 1 else next_start("m", since)
    end = first  # the whole months are those from `first` to `end` (excluded)
    while next_start("m", end) <= until + timedelta(days=1):
        end = next_start("m", end)
    days = (StatsSet.start >= since) & (StatsSet.start <= until)
    if end > first:
        months = (StatsSet.period == "m") & (StatsSet.start >= first) & (StatsSet.start < end)
        days &= (StatsSet.start < first) | (StatsSet.start >= end)
        return months | ((StatsSet.period == "d") & days)
    return (StatsSet.period == "d") & days


def range_size(db: Session, client_id: str, metric: str, since: date, until: date) -> int:
    """How many citizens are in `metric`'s sets from `since` through `until`: the union of the
    sets of the whole months in the range and of the days outside them."""
    query = select(StatsSet.members).where(
        StatsSet.client_id == client_id, StatsSet.metric == metric, _covering(since, until)
    )
    found = BitMap64()
    for members in db.scalars(query):
        found |= BitMap64.deserialize(members)
    return len(found)


def range_sizes(db: Session, metric: str, since: date, until: date) -> dict[str, int]:
    """`range_size` of every e-service (and of all of them, `*`) at once, in one query."""
    query = select(StatsSet.client_id, StatsSet.members).where(
        StatsSet.metric == metric, _covering(since, until)
    )
    found: dict[str, BitMap64] = {}
    for client_id, members in db.execute(query):
        found.setdefault(client_id, BitMap64()).update(BitMap64.deserialize(members))
    return {client_id: len(members) for client_id, members in found.items()}
