"""The e-services side by side: one line per e-service with its key figures over a range and
its completed sign-ins period by period, ranked by any column.

Computed in one pass: the range's day cells of every e-service added up by the database (one
query grouped by e-service), their period cells for the trend (one query), the exact unique
citizens of every e-service (one query over the citizen sets) and the transactions and costs
they reported (two queries). Never a report per e-service. Suppressed as the report is
(`idp.stats.indicators`): an e-service with fewer than `min_cell` citizens in the range shows
no sign-in figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.db.models import Client, StatsCount
from idp.stats import sets
from idp.stats.indicators import build_row, period_row
from idp.stats.kpis import reported, reported_cells, whole_months
from idp.stats.periods import starts
from idp.stats.rules import ALL

Raw = dict[str, dict[str, int]]
METRICS = ("started", "completed", "ratings")
TREND = ("completed", "citizens")  # what a period of the trend needs (citizens: suppression)
# The columns a table can be ranked by, and the default: most sign-ins completed first.
SORTS = (
    "name",
    "completed",
    "completion_rate",
    "user_satisfaction",
    "digital_take_up",
    "cost_per_transaction",
)
DEFAULT_SORT = "completed"
COLUMNS = (
    "client_id",
    "name",
    "started",
    "completed",
    "completion_rate",
    "user_satisfaction",
    "user_satisfaction_ratings",
    "digital_take_up",
    "cost_per_transaction",
)


@dataclass
class Eservice:
    """One e-service's line: its figures over the range and its completed sign-ins by period
    (`trend`, None where suppressed)."""

    client_id: str
    name: str
    started: int | None = None
    completed: int | None = None
    completion_rate: float | None = None
    user_satisfaction: float | None = None
    user_satisfaction_ratings: int | None = None
    digital_take_up: float | None = None
    cost_per_transaction: float | None = None
    trend: list[int | None] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS} | {"trend": self.trend}


def _cells(
    db: Session, period: str, since: date, until: date, metrics: Iterable[str]
) -> dict[str, dict[date, Raw]]:
    """`client -> start -> metric -> dim -> value` of every e-service (not `*`)."""
    found: dict[str, dict[date, Raw]] = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    query = select(
        StatsCount.client_id, StatsCount.start, StatsCount.metric, StatsCount.dim, StatsCount.value
    ).where(
        StatsCount.period == period,
        StatsCount.client_id != ALL,
        StatsCount.metric.in_(list(metrics)),
        StatsCount.start >= since,
        StatsCount.start <= until,
    )
    for client_id, start, metric, dim, value in db.execute(query):
        found[client_id][start][metric][dim] = int(value)
    return found


def _totals(db: Session, since: date, until: date) -> dict[str, Raw]:
    """`client -> metric -> dim -> value` over the range's days, added up by the database."""
    found: dict[str, Raw] = defaultdict(lambda: defaultdict(dict))
    total = func.sum(StatsCount.value)
    query = (
        select(StatsCount.client_id, StatsCount.metric, StatsCount.dim, total)
        .where(
            StatsCount.period == "d",
            StatsCount.client_id != ALL,
            StatsCount.metric.in_(METRICS),
            StatsCount.start >= since,
            StatsCount.start <= until,
        )
        .group_by(StatsCount.client_id, StatsCount.metric, StatsCount.dim)
    )
    for client_id, metric, dim, value in db.execute(query):
        found[client_id][metric][dim] = int(value or 0)
    return found


def compare(
    db: Session, *, since: date, until: date, period: str = "d", min_cell: int = 5
) -> list[Eservice]:
    """Every registered e-service (and any other that has figures), by name."""
    periods = starts(period, since, until)
    totals = _totals(db, since, until)
    trend = _cells(db, period, periods[0], until, TREND)
    citizens = sets.range_sizes(db, "citizens", since, until)
    months = whole_months(since, until)
    channels, costs = reported_cells(db, None, months)
    names: dict[str, str] = {}
    for client_id, name in db.execute(select(Client.client_id, Client.name)):
        names[client_id] = name or client_id
    reported_by: dict[str, tuple[dict[Any, Any], dict[Any, Any]]] = defaultdict(lambda: ({}, {}))
    for key, counts in channels.items():
        reported_by[key[0]][0][key] = counts
    for key, cents in costs.items():
        reported_by[key[0]][1][key] = cents
    found = []
    for client_id in sorted(
        {*names, *totals, *trend}, key=lambda c: ((names.get(c) or c).lower(), c)
    ):
        line = Eservice(client_id, names.get(client_id, client_id))
        row = build_row(
            since,
            totals.get(client_id, {}),
            min_cell,
            citizens=citizens.get(client_id, 0),
            new=0,
        )
        line.started, line.completed = row.values["started"], row.values["completed"]
        line.completion_rate = row.completion_rate
        line.user_satisfaction = row.satisfaction["eservice"]["satisfied"]
        line.user_satisfaction_ratings = row.satisfaction["eservice"]["ratings"]
        money = reported(*reported_by[client_id], months, min_cell)
        line.digital_take_up, line.cost_per_transaction = (
            money.digital_take_up,
            money.cost_per_transaction,
        )
        cells = trend.get(client_id, {})
        line.trend = [
            period_row(start, cells.get(start, {}), min_cell).values["completed"]
            for start in periods
        ]
        found.append(line)
    return found


def ranked(lines: list[Eservice], sort: str, descending: bool) -> list[Eservice]:
    """The lines by `sort` (one of `SORTS`); those without a figure (suppressed, not
    reported) last whichever the direction, then by name."""
    if sort == "name":
        return sorted(lines, key=lambda line: line.name.lower(), reverse=descending)
    shown = [line for line in lines if getattr(line, sort) is not None]
    missing = [line for line in lines if getattr(line, sort) is None]
    shown.sort(key=lambda line: line.name.lower())
    shown.sort(key=lambda line: getattr(line, sort), reverse=descending)
    return shown + missing
