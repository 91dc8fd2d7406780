"""The indicators for a date range, an e-service (or all) and a period, ready to show.

Only aggregates leave this module, and none about fewer than `min_cell` citizens:

- a period of an e-service in which fewer than `min_cell` citizens signed in shows no figure
  at all (unless every figure is zero), since its counts could be about those few citizens;
- any other count between 1 and `min_cell - 1` is suppressed; new and returning citizens are
  suppressed together (either one would give the other away from the total);
- rates and times are shown only when the figures they come from are.

Suppressed cells are `None` (blank in CSV, `null` in JSON, "suppressed" on the page).

Ratings are not counts of citizens signing in: their figures are suppressed by the number of
ratings (`idp.stats.kpis.satisfaction`), whatever the period's citizens. A report also holds the
range's key performance indicators beside those of the range before it (`kpis`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from idp.db.models import StatsCount, TotpCredential, User
from idp.stats import sets
from idp.stats.kpis import (
    Kpis,
    Measures,
    Reported,
    compare,
    previous_range,
    ratio,
    reported,
    reported_cells,
    satisfactions,
    service_standard,
    shown,
    small,
    whole_months,
)
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
REPORTED = (
    "transactions",
    "online_transactions",
    "digital_take_up",
    "cost",
    "cost_per_transaction",
)
ACTIVE_IDENTITY_DAYS = 365  # an identity is active when it signed in within this many days
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
    satisfaction: dict[str, dict[str, Any]] = field(default_factory=dict)
    reported: Reported | None = None  # month rows and the range: what e-services reported

    def as_dict(self) -> dict[str, Any]:
        money = self.reported.as_dict() if self.reported else {}
        return {
            "start": self.start.isoformat(),
            **self.values,
            "completion_rate": self.completion_rate,
            "sso_share": self.sso_share,
            "median_seconds": self.median_seconds,
            "p95_seconds": self.p95_seconds,
            **{
                f"{source}_{name}": found.get(name)
                for source, found in self.satisfaction.items()
                for name in ("ratings", "mean", "satisfied")
            },
            **{name: money.get(name) for name in REPORTED},
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
    previous: Row | None = None  # the range before, as a whole (`kpis.previous_since`...)
    kpis: Kpis | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "period": self.period,
            "client_id": self.client_id,
            "min_cell": self.min_cell,
            "periods": [row.as_dict() for row in self.rows],
            "total": self.total.as_dict() if self.total else None,
            "previous": self.previous.as_dict() if self.previous else None,
            "kpis": self.kpis.as_dict() if self.kpis else None,
            "satisfaction": self.total.satisfaction if self.total else {},
            "channels": self.total.reported.channels if self.total and self.total.reported else {},
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
    rated = satisfactions(raw.get("ratings", {}), min_cell)
    values: dict[str, Cell]
    if citizens < min_cell and (any(plain.values()) or timed):
        values = dict.fromkeys(plain)
        return Row(start, values, satisfaction=rated)
    values = {k: (None if small(v, min_cell) else v) for k, v in plain.items()}
    if values["new_citizens"] is None or values["returning_citizens"] is None:
        values["new_citizens"] = values["returning_citizens"] = None
    row = Row(start, values, satisfaction=rated)
    row.completion_rate = ratio(values["completed"], values["started"])
    row.sso_share = ratio(values["completed_sso"], values["completed"])
    if timed >= min_cell:
        row.median_seconds = percentile(histogram, 0.5)
        row.p95_seconds = percentile(histogram, 0.95)
    return row


def period_row(start: date, raw: dict[str, dict[str, int]], min_cell: int) -> Row:
    """The row of one period from its stored cells (its citizens counted by the rollup)."""
    return build_row(
        start,
        raw,
        min_cell,
        citizens=sum(raw.get("citizens", {}).values()),
        new=sum(raw.get("new_citizens", {}).values()),
    )


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
        dim: (None if hidden or small(value, min_cell) else value)
        for dim, value in sorted(values.items())
    }


def _system_row(start: date, raw: dict[str, dict[str, int]], min_cell: int) -> dict[str, Any]:
    def total(metric: str) -> int:
        return sum(raw.get(metric, {}).values())

    row: dict[str, Any] = {"start": start.isoformat()}
    active = total("citizens")
    row["active_citizens"] = None if small(active, min_cell) else active
    for events_metric, citizens_metric in SYSTEM:
        people, count = total(citizens_metric), total(events_metric)
        hidden = small(people, min_cell) or (people == 0 and small(count, min_cell))
        row[events_metric] = None if hidden else count
        row[citizens_metric] = None if hidden else people
    return row


def adoptions(
    db: Session, min_cell: int, instants: Sequence[datetime | None]
) -> list[dict[str, Any]]:
    """For each instant (None: now), the citizens (not administrators, not disabled) and how
    many had a second factor then, as far as the accounts kept tell (when each was made,
    disabled, and confirmed its authenticator app, which is never before the account was made;
    a second factor removed since is not known).

    No join of every account with its authenticator app (half a second for a million): one
    pass over the accounts, one over the apps, and the apps of the few administrators and
    disabled accounts taken off."""
    citizen: list[Any] = []
    confirmed: list[Any] = []
    taken_off: list[Any] = []
    for at in instants:
        if at is None:
            is_citizen: ColumnElement[bool] = User.disabled_at.is_(None)
            has_factor: ColumnElement[bool] = TotpCredential.confirmed_at.is_not(None)
            excluded: ColumnElement[bool] = User.is_admin.is_(True) | User.disabled_at.is_not(None)
        else:
            is_citizen = (User.created_at <= at) & or_(
                User.disabled_at.is_(None), User.disabled_at > at
            )
            has_factor = TotpCredential.confirmed_at <= at
            excluded = User.is_admin.is_(True) | (User.disabled_at <= at)
        citizen.append(func.count(case((is_citizen, 1))))
        confirmed.append(func.count(case((has_factor, 1))))
        taken_off.append(func.count(case((has_factor & excluded, 1))))
    citizens = db.execute(select(*citizen).where(User.is_admin.is_(False))).one()
    factors = db.execute(select(*confirmed).select_from(TotpCredential)).one()
    others = db.execute(
        select(*taken_off)
        .select_from(TotpCredential)
        .join(User, User.id == TotpCredential.user_id)
        .where(User.is_admin.is_(True) | User.disabled_at.is_not(None))
    ).one()
    found = []
    for index in range(len(instants)):
        everyone = int(citizens[index] or 0)
        with_factor = int(factors[index] or 0) - int(others[index] or 0)
        shown_all = shown(everyone, min_cell)
        shown_factor = (
            None
            if small(with_factor, min_cell) or small(everyone - with_factor, min_cell)
            else with_factor
        )
        found.append(
            {
                "citizens": shown_all,
                "with_second_factor": shown_factor,
                "share": ratio(shown_factor, shown_all),
            }
        )
    return found


@dataclass
class RangeTotal:
    """A range as a whole: its row, its raw cells added up, and its key figures."""

    row: Row
    merged: dict[str, dict[str, int]]
    measures: Measures


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC) - timedelta(microseconds=1)


def range_total(
    db: Session,
    client_id: str | None,
    since: date,
    until: date,
    *,
    min_cell: int,
    adult_population: int | None = None,
    second_factor: float | None = None,
) -> RangeTotal:
    """The figures of the whole range from `since` through `until` (docs/indicators.md);
    `second_factor`: the adoption at its end (`adoptions`)."""
    client = client_id or ALL
    merged: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for raw in _cells(db, "d", client, since, until).values():
        for metric, dims in raw.items():
            for dim, value in dims.items():
                merged[metric][dim] += value
    # Exact: the union of the range's sets; each citizen is new on one day only.
    citizens = sets.range_size(db, client, "citizens", since, until)
    new = sum(merged.get("new_citizens", {}).values())
    row = build_row(since, merged, min_cell, citizens=citizens, new=new)
    months = whole_months(since, until)
    channels, costs = reported_cells(db, None if client_id is None else [client_id], months)
    row.reported = money = reported(channels, costs, months, min_cell)
    hidden = row.values["citizens"] is None
    levels = _breakdown(dict(merged.get("acr", {})), min_cell, hidden)
    completed = row.values["completed"]
    share_of_adults = None
    if client_id is None and adult_population:
        first = until - timedelta(days=ACTIVE_IDENTITY_DAYS - 1)
        identities = sets.range_size(db, ALL, "citizens", first, until)
        share_of_adults = ratio(shown(identities, min_cell), adult_population)
    rated = row.satisfaction
    figures: dict[str, Any] = {
        **service_standard(row.completion_rate, rated, money),
        "user_satisfaction_mean": rated["eservice"]["mean"],
        "user_satisfaction_ratings": rated["eservice"]["ratings"],
        "signin_satisfaction": rated["signin"]["satisfied"],
        "signin_satisfaction_mean": rated["signin"]["mean"],
        "signin_satisfaction_ratings": rated["signin"]["ratings"],
        "transactions": money.transactions,
        "online_transactions": money.online,
        "cost": money.cost,
        "active_citizens": row.values["citizens"],
        "adult_population_share": share_of_adults,
        "second_factor_adoption": second_factor,
        "sso_reuse": row.sso_share,
        "median_seconds": row.median_seconds,
        "p95_seconds": row.p95_seconds,
    }
    measures = Measures(
        figures,
        {level: ratio(count, completed) for level, count in levels.items()},
        _breakdown(dict(merged.get("failed", {})), min_cell, hidden),
        absent={
            "assurance_mix": None if hidden else ratio(0, completed),
            "failure_reasons": None if hidden else 0,
        },
    )
    return RangeTotal(row, merged, measures)


def report(
    db: Session,
    *,
    since: date,
    until: date,
    period: str = "d",
    client_id: str | None = None,
    min_cell: int = 5,
    adult_population: int | None = None,
    currency: str = "AMD",
) -> Report:
    """The indicators of `client_id` (None: every e-service) from `since` through `until`,
    by `period`, with the range as a whole, and its key figures beside the range before."""
    client = client_id or ALL
    result = Report(since, until, period, client_id, min_cell)
    periods = starts(period, since, until)
    cells = _cells(db, period, client, periods[0], until)
    result.rows = [period_row(start, cells.get(start, {}), min_cell) for start in periods]
    if period == "m":
        channels, costs = reported_cells(db, None if client_id is None else [client_id], periods)
        for row in result.rows:
            row.reported = reported(channels, costs, [row.start], min_cell)
    before_since, before_until = previous_range(since, until)
    now, at_end, at_end_before = adoptions(
        db, min_cell, [None, _end_of(until), _end_of(before_until)]
    )
    current, before = (
        range_total(
            db,
            client_id,
            start,
            end,
            min_cell=min_cell,
            adult_population=adult_population,
            second_factor=adopted["share"],
        )
        for start, end, adopted in (
            (since, until, at_end),
            (before_since, before_until, at_end_before),
        )
    )
    result.total, result.previous = current.row, before.row
    result.kpis = compare(
        current.measures,
        before.measures,
        since=before_since,
        until=before_until,
        currency=currency,
    )
    hidden = current.row.values["citizens"] is None
    result.breakdowns = {
        name: _breakdown(dict(current.merged.get(name, {})), min_cell, hidden)
        for name in BREAKDOWNS
    }
    system = _cells(db, period, ALL, periods[0], until)
    result.system = [_system_row(start, system.get(start, {}), min_cell) for start in periods]
    result.adoption = now
    return result
