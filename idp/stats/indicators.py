"""The indicators for a date range, an e-service (or all) and a period, ready to show.

Only aggregates leave this module, and none about fewer than `min_cell` citizens:

- a period of an e-service in which fewer than `min_cell` citizens signed in shows no figure
  at all (unless every figure is zero), since its counts could be about those few citizens;
- any other count between 1 and `min_cell - 1` is suppressed; new and returning citizens are
  suppressed together (either one would give the other away from the total);
- rates and times are shown only when the figures they come from are.

Suppressed cells are `None` (blank in CSV, `null` in JSON, "suppressed" on the page).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.db.models import StatsCount, TotpCredential, User
from idp.stats import sets
from idp.stats.periods import starts
from idp.stats.rules import ALL

Cell = int | None
COUNTS = (
    "started",
    "completed",
    "completed_sso",
    "failed",
    "abandoned",
    "citizens",
    "new_citizens",
    "returning_citizens",
    "consents_given",
    "consents_revoked",
)
BREAKDOWNS = ("failed", "abandoned", "acr", "amr")
# System-wide: (count of events, count of distinct citizens).
SYSTEM = (
    ("totp_enrolled", "totp_enrolled_citizens"),
    ("recovery_used", "recovery_citizens"),
    ("lockouts", "locked_citizens"),
    ("password_resets", "reset_citizens"),
)


@dataclass
class Row:
    """The figures of one period (or of the whole range)."""

    start: date
    values: dict[str, Cell]
    completion_rate: float | None = None
    sso_share: float | None = None
    median_seconds: Cell = None
    p95_seconds: Cell = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            **self.values,
            "completion_rate": self.completion_rate,
            "sso_share": self.sso_share,
            "median_seconds": self.median_seconds,
            "p95_seconds": self.p95_seconds,
        }


@dataclass
class Report:
    since: date
    until: date
    period: str
    client_id: str | None
    min_cell: int
    rows: list[Row] = field(default_factory=list)
    total: Row | None = None
    breakdowns: dict[str, dict[str, Cell]] = field(default_factory=dict)
    system: list[dict[str, Any]] = field(default_factory=list)
    adoption: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "period": self.period,
            "client_id": self.client_id,
            "min_cell": self.min_cell,
            "periods": [row.as_dict() for row in self.rows],
            "total": self.total.as_dict() if self.total else None,
            "breakdowns": self.breakdowns,
            "system": self.system,
            "second_factor_adoption": self.adoption,
        }


def percentile(histogram: dict[int, int], share: float) -> int | None:
    """The smallest value with at least `share` of the observations at or below it."""
    total = sum(histogram.values())
    if not total:
        return None
    needed = share * total
    running = 0
    for value in sorted(histogram):
        running += histogram[value]
        if running >= needed:
            return value
    return max(histogram)  # pragma: no cover - the loop always returns


def _small(value: int, min_cell: int) -> bool:
    return 0 < value < min_cell


def _ratio(part: Cell, whole: Cell) -> float | None:
    if part is None or whole is None or whole == 0:
        return None
    return round(part / whole, 4)


def build_row(
    start: date, raw: dict[str, dict[str, int]], min_cell: int, *, citizens: int, new: int
) -> Row:
    """One row's figures from its raw cells (`metric -> dim -> value`), suppressed."""

    def total(metric: str) -> int:
        return sum(raw.get(metric, {}).values())

    plain = {name: total(name) for name in COUNTS if name not in ("citizens", "new_citizens")}
    plain.update(citizens=citizens, new_citizens=new, returning_citizens=max(citizens - new, 0))
    histogram = {int(k): v for k, v in raw.get("seconds", {}).items() if v}
    timed = sum(histogram.values())
    values: dict[str, Cell]
    if citizens < min_cell and (any(plain.values()) or timed):
        values = dict.fromkeys(plain)
        return Row(start, values)
    values = {k: (None if _small(v, min_cell) else v) for k, v in plain.items()}
    if values["new_citizens"] is None or values["returning_citizens"] is None:
        values["new_citizens"] = values["returning_citizens"] = None
    row = Row(start, values)
    row.completion_rate = _ratio(values["completed"], values["started"])
    row.sso_share = _ratio(values["completed_sso"], values["completed"])
    if timed >= min_cell:
        row.median_seconds = percentile(histogram, 0.5)
        row.p95_seconds = percentile(histogram, 0.95)
    return row


def _cells(
    db: Session, period: str, client: str, since: date, until: date
) -> dict[date, dict[str, dict[str, int]]]:
    found: dict[date, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    query = select(StatsCount.start, StatsCount.metric, StatsCount.dim, StatsCount.value).where(
        StatsCount.period == period,
        StatsCount.client_id == client,
        StatsCount.start >= since,
        StatsCount.start <= until,
    )
    for start, metric, dim, value in db.execute(query):
        found[start][metric][dim] = int(value)
    return found


def _breakdown(values: dict[str, int], min_cell: int, hidden: bool) -> dict[str, Cell]:
    return {
        dim: (None if hidden or _small(value, min_cell) else value)
        for dim, value in sorted(values.items())
    }


def _system_row(start: date, raw: dict[str, dict[str, int]], min_cell: int) -> dict[str, Any]:
    def total(metric: str) -> int:
        return sum(raw.get(metric, {}).values())

    row: dict[str, Any] = {"start": start.isoformat()}
    active = total("citizens")
    row["active_citizens"] = None if _small(active, min_cell) else active
    for events_metric, citizens_metric in SYSTEM:
        people, count = total(citizens_metric), total(events_metric)
        hidden = _small(people, min_cell) or (people == 0 and _small(count, min_cell))
        row[events_metric] = None if hidden else count
        row[citizens_metric] = None if hidden else people
    return row


def adoption(db: Session, min_cell: int) -> dict[str, Any]:
    """Now: citizens (not administrators, not disabled) and how many have a second factor."""
    citizens = select(User.id).where(User.is_admin.is_(False), User.disabled_at.is_(None))
    everyone = int(db.scalar(select(func.count()).select_from(citizens.subquery())) or 0)
    with_factor = int(
        db.scalar(
            select(func.count())
            .select_from(TotpCredential)
            .where(
                TotpCredential.confirmed_at.is_not(None),
                TotpCredential.user_id.in_(citizens),
            )
        )
        or 0
    )
    shown_all = None if _small(everyone, min_cell) else everyone
    shown_factor = (
        None
        if _small(with_factor, min_cell) or _small(everyone - with_factor, min_cell)
        else with_factor
    )
    return {
        "citizens": shown_all,
        "with_second_factor": shown_factor,
        "share": _ratio(shown_factor, shown_all),
    }


def report(
    db: Session,
    *,
    since: date,
    until: date,
    period: str = "d",
    client_id: str | None = None,
    min_cell: int = 5,
) -> Report:
    """The indicators of `client_id` (None: every e-service) from `since` through `until`."""
    client = client_id or ALL
    result = Report(since, until, period, client_id, min_cell)
    cells = _cells(db, period, client, starts(period, since, until)[0], until)
    for start in starts(period, since, until):
        raw = cells.get(start, {})
        result.rows.append(
            build_row(
                start,
                raw,
                min_cell,
                citizens=sum(raw.get("citizens", {}).values()),
                new=sum(raw.get("new_citizens", {}).values()),
            )
        )
    days = _cells(db, "d", client, since, until)
    merged: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for raw in days.values():
        for metric, dims in raw.items():
            for dim, value in dims.items():
                merged[metric][dim] += value
    # Exact: the union of the range's sets; each citizen is new on one day only.
    citizens = sets.range_size(db, client, "citizens", since, until)
    new = sum(merged.get("new_citizens", {}).values())
    total = build_row(since, merged, min_cell, citizens=citizens, new=new)
    result.total = total
    hidden = total.values["citizens"] is None
    result.breakdowns = {
        name: _breakdown(dict(merged.get(name, {})), min_cell, hidden) for name in BREAKDOWNS
    }
    system = _cells(db, period, ALL, starts(period, since, until)[0], until)
    result.system = [
        _system_row(start, system.get(start, {}), min_cell)
        for start in starts(period, since, until)
    ]
    result.adoption = adoption(db, min_cell)
    return result
