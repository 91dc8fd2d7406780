"""What the indicators dashboard shows, ready for its template: the figures of a report
(`idp.stats.indicators.Report`) written in the page's language, as headline tiles (value,
change against the range before, sparkline), charts with a one-sentence summary and their
data table, and the breakdowns. Only presentation: every figure comes from the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from babel.dates import format_skeleton
from babel.numbers import format_currency, format_decimal
from markupsafe import Markup

from idp.datetimes import babel_locale
from idp.i18n import N_
from idp.stats import charts
from idp.stats.indicators import Report, Row

Translate = Callable[..., str]
Number = int | float | None


class Formats:
    """Figures as the page's language writes them. `kind`: count, share (0-1, written as a
    percentage), seconds, money (in `currency`) or score (a mean of 1-5)."""

    def __init__(self, locale: str, currency: str, translate: Translate) -> None:
        self.locale = babel_locale(locale)
        self.currency = currency
        self._ = translate

    def value(self, kind: str, value: Number) -> str:
        if value is None:
            return "—"
        if kind == "share":
            return self._("%(n)s %%", n=format_decimal(value * 100, "#,##0.0", locale=self.locale))
        if kind == "seconds":
            return self._("%(n)s s", n=format_decimal(value, "#,##0", locale=self.locale))
        if kind == "money":
            return format_currency(value, self.currency, locale=self.locale)
        if kind == "score":
            return format_decimal(value, "0.00", locale=self.locale)
        return format_decimal(value, "#,##0", locale=self.locale)

    def difference(self, kind: str, change: float) -> str:
        """The size of a change, without its sign."""
        size = abs(change)
        if kind == "share":
            points = format_decimal(size * 100, "#,##0.0", locale=self.locale)
            return self._("%(n)s percentage points", n=points)
        return self.value(kind, size)

    def axis(self, kind: str) -> Callable[[float], str]:
        """A value of a chart's axis: shares as whole percentages, the rest as written."""
        if kind == "share":
            return lambda v: self._(
                "%(n)s %%", n=format_decimal(v * 100, "#,##0", locale=self.locale)
            )
        if kind == "money":
            return lambda v: format_decimal(v, "#,##0.##", locale=self.locale)
        return lambda v: format_decimal(v, "#,##0.##", locale=self.locale)

    def day(self, value: date, skeleton: str = "yMMMd") -> str:
        return str(format_skeleton(skeleton, value, locale=self.locale))

    def period(self, period: str, start: date, short: bool = False) -> str:
        """A period as a chart (`short`) or a table names it."""
        if period == "m":
            return self.day(start, "yMMM")
        if short:
            return self.day(start, "MMMd")
        if period == "w":
            return self._("Week of %(day)s", day=self.day(start))
        return self.day(start)


@dataclass
class Change:
    direction: str  # up, down, same
    text: str  # "Up 3.2 percentage points"


@dataclass
class Tile:
    key: str
    title: str
    value: str | None  # None: not shown (`note` says why)
    change: Change | None
    previous: str | None
    note: str | None
    sparkline: Markup
    trend: str  # the sparkline's values in words, for screen readers ("" without one)


@dataclass
class Chart:
    key: str
    title: str
    svg: Markup
    summary: str
    legend: list[str]  # the series' names (several series only)
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Breakdown:
    key: str
    title: str
    lines: list[
        tuple[str, str, float | None]
    ]  # name, count (or "suppressed"), share of the largest
    empty: bool = field(default=False)


Getter = Callable[[Row], Number]


def _rated(source: str) -> Getter:
    return lambda row: row.satisfaction.get(source, {}).get("satisfied")


def _money(name: str) -> Getter:
    return lambda row: getattr(row.reported, name) if row.reported else None


# (figure, title, kind, its value in a period row for the sparkline, or None)
HEADLINE: tuple[tuple[str, str, str, Getter | None], ...] = (
    ("completion_rate", N_("Completion rate"), "share", lambda r: r.completion_rate),
    ("user_satisfaction", N_("User satisfaction"), "share", _rated("eservice")),
    ("digital_take_up", N_("Digital take-up"), "share", _money("digital_take_up")),
    ("cost_per_transaction", N_("Cost per transaction"), "money", _money("cost_per_transaction")),
)
IDENTITY: tuple[tuple[str, str, str, Getter | None], ...] = (
    ("active_citizens", N_("Active citizens"), "count", lambda r: r.values["citizens"]),
    ("adult_population_share", N_("Adults with an active digital identity"), "share", None),
    ("second_factor_adoption", N_("Second-factor adoption"), "share", None),
    ("sso_reuse", N_("Single sign-on reuse"), "share", lambda r: r.sso_share),
    ("median_seconds", N_("Median time to sign in"), "seconds", lambda r: r.median_seconds),
    ("p95_seconds", N_("Time to sign in, 95th percentile"), "seconds", lambda r: r.p95_seconds),
    ("signin_satisfaction", N_("Sign-in ease"), "share", _rated("signin")),
)
MONTHLY = ("digital_take_up", "cost_per_transaction")


def _why_not_shown(key: str, report: Report, adult_population: int | None) -> str:
    if key == "adult_population_share":
        if report.client_id is not None:
            return N_("Counted for all e-services together only.")
        if not adult_population:
            return N_("The adult population is not set (stats_adult_population).")
    if key in MONTHLY:
        return N_("A monthly figure: choose whole months, for example the last 3 whole months.")
    return N_("Too few to show (below the threshold), or none in this range.")


def change_of(kind: str, change: Number, formats: Formats) -> Change | None:
    _ = formats._
    if change is None:
        return None
    if change == 0:
        return Change("same", _("No change"))
    amount = formats.difference(kind, change)
    if change > 0:
        return Change("up", _("Up %(amount)s", amount=amount))
    return Change("down", _("Down %(amount)s", amount=amount))


def _trend_words(values: Sequence[Number], kind: str, formats: Formats) -> str:
    shown = [v for v in values if v is not None]
    if len(shown) < 2:
        return ""
    return formats._(
        "Trend: from %(first)s to %(last)s",
        first=formats.value(kind, shown[0]),
        last=formats.value(kind, shown[-1]),
    )


def tiles(
    report: Report,
    formats: Formats,
    group: Sequence[tuple[str, str, str, Getter | None]],
    adult_population: int | None = None,
) -> list[Tile]:
    _ = formats._
    found = []
    assert report.kpis is not None
    for key, title, kind, getter in group:
        figure = report.kpis.figures[key]
        points = [getter(row) for row in report.rows] if getter else []
        shown = figure.value is not None
        found.append(
            Tile(
                key=key,
                title=_(title),
                value=formats.value(kind, figure.value) if shown else None,
                change=change_of(kind, figure.change, formats),
                previous=None if figure.previous is None else formats.value(kind, figure.previous),
                note=None if shown else _(_why_not_shown(key, report, adult_population)),
                sparkline=charts.sparkline(points),
                trend=_trend_words(points, kind, formats),
            )
        )
    return found


# Charts ------------------------------------------------------------------------------------

# (key, title, kind, series: (name, getter), lines, total: whether the periods add up)
ChartSpec = tuple[str, str, str, tuple[tuple[str, Getter], ...], bool, bool]
CHARTS: tuple[ChartSpec, ...] = (
    (
        "signins",
        N_("Sign-ins started and completed"),
        "count",
        (
            (N_("Completed"), lambda r: r.values["completed"]),
            (N_("Started"), lambda r: r.values["started"]),
        ),
        True,
        True,
    ),
    (
        "completion",
        N_("Completion rate"),
        "share",
        ((N_("Completion rate"), lambda r: r.completion_rate),),
        True,
        False,
    ),
    (
        "citizens",
        N_("Unique citizens"),
        "count",
        ((N_("Unique citizens"), lambda r: r.values["citizens"]),),
        False,
        False,
    ),
    (
        "failures",
        N_("Failed sign-in steps and abandoned sign-ins"),
        "count",
        (
            (N_("Failed steps"), lambda r: r.values["failed"]),
            (N_("Abandoned"), lambda r: r.values["abandoned"]),
        ),
        True,
        True,
    ),
    (
        "satisfaction",
        N_("Satisfaction"),
        "share",
        ((N_("User satisfaction"), _rated("eservice")), (N_("Sign-in ease"), _rated("signin"))),
        True,
        False,
    ),
    (
        "ratings",
        N_("Ratings received"),
        "count",
        (
            (N_("Ratings of the e-services"), lambda r: r.satisfaction["eservice"]["ratings"]),
            (N_("Answers about signing in"), lambda r: r.satisfaction["signin"]["ratings"]),
        ),
        True,
        True,
    ),
    (
        "time",
        N_("Time to sign in"),
        "seconds",
        (
            (N_("Median"), lambda r: r.median_seconds),
            (N_("95th percentile"), lambda r: r.p95_seconds),
        ),
        True,
        False,
    ),
    (
        "sso",
        N_("Single sign-on reuse"),
        "share",
        ((N_("Single sign-on reuse"), lambda r: r.sso_share),),
        True,
        False,
    ),
)
MONTHLY_CHARTS: tuple[ChartSpec, ...] = (
    (
        "take_up",
        N_("Digital take-up"),
        "share",
        ((N_("Digital take-up"), _money("digital_take_up")),),
        True,
        False,
    ),
    (
        "cost",
        N_("Cost per transaction"),
        "money",
        ((N_("Cost per transaction"), _money("cost_per_transaction")),),
        True,
        False,
    ),
)


def summary(
    kind: str,
    names: Sequence[str],
    columns: Sequence[Sequence[Number]],
    labels: Sequence[str],
    total: bool,
    formats: Formats,
) -> str:
    """One sentence per series: its highest period, and its total (counts that add up) or
    its first and last values."""
    _ = formats._
    said = []
    for name, values in zip(names, columns, strict=True):
        shown = [(v, labels[i]) for i, v in enumerate(values) if v is not None]
        if not shown:
            said.append(_("%(series)s: nothing to show in this range.", series=name))
            continue
        high, when = max(shown, key=lambda pair: pair[0])
        if total:
            said.append(
                _(
                    "%(series)s: highest %(value)s (%(when)s); total %(total)s.",
                    series=name,
                    value=formats.value(kind, high),
                    when=when,
                    total=formats.value(kind, sum(v for v, _when in shown)),
                )
            )
        else:
            said.append(
                _(
                    "%(series)s: from %(first)s to %(last)s; highest %(value)s (%(when)s).",
                    series=name,
                    first=formats.value(kind, shown[0][0]),
                    last=formats.value(kind, shown[-1][0]),
                    value=formats.value(kind, high),
                    when=when,
                )
            )
    return " ".join(said)


def chart_views(report: Report, formats: Formats) -> list[Chart]:
    _ = formats._
    specs = CHARTS + (MONTHLY_CHARTS if report.period == "m" else ())
    short = [formats.period(report.period, row.start, short=True) for row in report.rows]
    long = [formats.period(report.period, row.start) for row in report.rows]
    found = []
    for key, title, kind, series, lines, total in specs:
        names = [_(name) for name, _getter in series]
        columns = [[getter(row) for row in report.rows] for _name, getter in series]
        svg = charts.chart(
            _(title),
            short,
            [charts.Series(n, c) for n, c in zip(names, columns, strict=True)],
            f"table-{key}",
            label=formats.axis(kind),
            lines=lines,
            top=1.0 if kind == "share" else None,
        )
        rows = [
            [long[i], *(formats.value(kind, column[i]) for column in columns)]
            for i in range(len(report.rows))
        ]
        found.append(
            Chart(
                key=key,
                title=_(title),
                svg=svg,
                summary=summary(kind, names, columns, long, total, formats),
                legend=names if len(names) > 1 else [],
                headers=[_("Period"), *names],
                rows=rows,
            )
        )
    return found


# Breakdowns --------------------------------------------------------------------------------

BREAKDOWN_TITLES = {
    "failed": N_("Failed steps by reason"),
    "abandoned": N_("Abandoned sign-ins by step reached"),
    "acr": N_("Completed sign-ins by assurance level"),
    "amr": N_("Completed sign-ins by methods"),
}


def breakdowns(report: Report, formats: Formats) -> list[Breakdown]:
    _ = formats._
    found = []
    for name, cells in report.breakdowns.items():
        largest = max((v for v in cells.values() if v is not None), default=0)
        ordered = sorted(cells.items(), key=lambda item: -(item[1] or 0))
        lines = [
            (
                dim or _("not given"),
                _("suppressed") if value is None else formats.value("count", value),
                None if value is None or not largest else value / largest,
            )
            for dim, value in ordered
        ]
        found.append(Breakdown(name, _(BREAKDOWN_TITLES[name]), lines, empty=not lines))
    return found


def system_rows(report: Report, formats: Formats) -> list[list[str]]:
    def cell(value: Any) -> str:
        return formats._("suppressed") if value is None else formats.value("count", value)

    return [
        [
            formats.period(report.period, date.fromisoformat(row["start"])),
            *(
                cell(row[name])
                for name in (
                    "active_citizens",
                    "totp_enrolled",
                    "recovery_used",
                    "lockouts",
                    "locked_citizens",
                    "password_resets",
                )
            ),
        ]
        for row in report.system
    ]
