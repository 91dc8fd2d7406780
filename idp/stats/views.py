"""The indicators dashboard of the admin console, and its CSV and JSON exports.

The filters are a GET form (and links): `since`, `until` (YYYY-MM-DD), `period` (d, w, m),
`client` (one e-service: the drill-down), and for the e-services side by side `sort` and `dir`.
The exports take the same filters and give exactly what the page shows; `?table=eservices`
gives the e-services side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.responses import JSONResponse, Response

from idp import i18n
from idp.admin.pages import Call, admin_view, show, translator
from idp.db.models import Client, StatsState
from idp.i18n import N_
from idp.stats import charts, dashboard, eservices, export, indicators
from idp.stats.periods import NAMES, start_of
from idp.stats.rollup import STATE_ID

DEFAULT_DAYS = 30
CSV_TABLES = ("periods", "kpis", "eservices")  # `?table=`: per period, key figure, e-service
MAX_PERIODS = {"d": 400, "w": 3 * 53, "m": 10 * 12}
PERIOD_LABELS = {"d": N_("Day"), "w": N_("Week"), "m": N_("Month")}
# The ranges offered as links: (name, label, days ending today, or whole months before this
# one, period). Whole months show the monthly figures (take-up, cost per transaction).
PRESETS = (
    ("7d", N_("Last 7 days"), 7, 0, "d"),
    ("30d", N_("Last 30 days"), 30, 0, "d"),
    ("quarter", N_("Last 3 whole months"), 0, 3, "w"),
    ("year", N_("Last 12 whole months"), 0, 12, "m"),
)


class BadFilter(ValueError):
    pass


@dataclass
class Filters:
    since: date
    until: date
    period: str
    client_id: str | None
    sort: str = eservices.DEFAULT_SORT
    descending: bool = True

    def query(self, **changes: Any) -> str:
        """The query string of these filters, with `changes` (None: left out)."""
        values: dict[str, Any] = {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "period": self.period,
            "client": self.client_id,
            "sort": None if self.sort == eservices.DEFAULT_SORT else self.sort,
            "dir": None
            if self.descending == _descending_first(self.sort)
            else _dir(self.descending),
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v})


def _dir(descending: bool) -> str:
    return "desc" if descending else "asc"


def _descending_first(sort: str) -> bool:
    """The direction a column is ranked in first: names A to Z, the cheapest first, the
    largest first otherwise."""
    return sort not in ("name", "cost_per_transaction")


def _day(text: str, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadFilter(N_("Dates are written YYYY-MM-DD.")) from None


def filters(call: Call) -> Filters:
    today = datetime.now(UTC).date()
    until = _day(call.query("until", 10), today)
    since = _day(call.query("since", 10), until - timedelta(days=DEFAULT_DAYS - 1))
    period = call.query("period", 1) or "d"
    if period not in NAMES:
        raise BadFilter(N_("Choose a day, week or month."))
    if since > until:
        raise BadFilter(N_("The start of the range is after its end."))
    if (until - since).days // {"d": 1, "w": 7, "m": 28}[period] >= MAX_PERIODS[period]:
        raise BadFilter(N_("The range is too long for this period; choose a longer period."))
    sort = call.query("sort", 32)
    sort = sort if sort in eservices.SORTS else eservices.DEFAULT_SORT
    direction = call.query("dir", 4)
    descending = direction == "desc" if direction in ("asc", "desc") else _descending_first(sort)
    return Filters(since, until, period, call.query("client", 128) or None, sort, descending)


def _report(call: Call, chosen: Filters) -> indicators.Report:
    return indicators.report(
        call.db,
        since=chosen.since,
        until=chosen.until,
        period=chosen.period,
        client_id=chosen.client_id,
        min_cell=call.runtime.settings.stats_min_cell,
        adult_population=call.runtime.settings.stats_adult_population,
        currency=call.runtime.settings.stats_currency,
    )


def _eservices(call: Call, chosen: Filters) -> list[eservices.Eservice]:
    lines = eservices.compare(
        call.db,
        since=chosen.since,
        until=chosen.until,
        period=chosen.period,
        min_cell=call.runtime.settings.stats_min_cell,
    )
    return eservices.ranked(lines, chosen.sort, chosen.descending)


def _presets(chosen: Filters, today: date, _: Callable[..., str]) -> list[dict[str, Any]]:
    found = []
    for name, label, days, months, period in PRESETS:
        until, since = today, today - timedelta(days=days - 1)
        if months:
            until = start_of("m", today) - timedelta(days=1)
            since = start_of("m", until)
            for _month in range(months - 1):
                since = start_of("m", since - timedelta(days=1))
        current = (chosen.since, chosen.until, chosen.period) == (since, until, period)
        query = chosen.query(since=since.isoformat(), until=until.isoformat(), period=period)
        found.append({"name": name, "text": _(label), "href": f"?{query}", "current": current})
    return found


def _sorts(chosen: Filters, _: Callable[..., str]) -> dict[str, dict[str, Any]]:
    """Each column's link: the other direction for the current column, its first otherwise;
    and `aria-sort` for the current one."""
    found = {}
    for name in eservices.SORTS:
        current = name == chosen.sort
        descending = not chosen.descending if current else _descending_first(name)
        found[name] = {
            "href": "?" + chosen.query(sort=name, dir=_dir(descending)),
            "aria": ("descending" if chosen.descending else "ascending") if current else None,
        }
    return found


def _page(call: Call) -> Response:
    _ = translator(call.request)
    clients = list(call.db.execute(select(Client.client_id, Client.name).order_by(Client.name)))
    state = call.db.get(StatsState, STATE_ID)
    values = {n: call.query(n, 128) for n in ("since", "until", "period", "client")}
    base = {
        "title": N_("Indicators"),
        "values": values,
        "clients": clients,
        "periods": PERIOD_LABELS,
        "state": state,
        "report": None,
    }
    try:
        chosen = filters(call)
    except BadFilter as error:
        return show(
            call, "admin/indicators.html", {**base, "problem": _(str(error))}, status_code=400
        )
    found = _report(call, chosen)
    formats = dashboard.Formats(
        i18n.negotiate(call.request), call.runtime.settings.stats_currency, _
    )
    settings = call.runtime.settings
    values.update(
        since=chosen.since.isoformat(),
        until=chosen.until.isoformat(),
        period=chosen.period,
        client=chosen.client_id or "",
    )
    lines = [] if chosen.client_id else _eservices(call, chosen)
    assert found.kpis is not None
    return show(
        call,
        "admin/indicators.html",
        {
            **base,
            "report": found,
            "chosen": chosen,
            "eservice_name": dict(clients).get(chosen.client_id, chosen.client_id)
            if chosen.client_id
            else None,
            "formats": formats,
            "previous_range": (found.kpis.previous_since, found.kpis.previous_until),
            "headline": dashboard.tiles(found, formats, dashboard.HEADLINE),
            "identity": dashboard.tiles(
                found, formats, dashboard.IDENTITY, settings.stats_adult_population
            ),
            "charts": dashboard.chart_views(found, formats),
            "breakdowns": dashboard.breakdowns(found, formats),
            "system_rows": dashboard.system_rows(found, formats),
            "eservices": lines,
            "sparklines": {line.client_id: charts.sparkline(line.trend) for line in lines},
            "sorts": _sorts(chosen, _),
            "presets": _presets(chosen, datetime.now(UTC).date(), _),
            "query": chosen.query(sort=None, dir=None),
            "eservices_query": chosen.query(client=None),
            "all_query": chosen.query(client=None),
        },
    )


def _refused(error: BadFilter | str) -> JSONResponse:
    return JSONResponse({"error": "invalid_request", "error_description": str(error)}, 400)


def _csv(call: Call) -> Response:
    try:
        chosen = filters(call)
    except BadFilter as error:
        return _refused(error)
    table = call.query("table", 16) or "periods"
    if table not in CSV_TABLES:
        return _refused("table is periods, kpis or eservices.")
    if table == "eservices":
        text, name = export.eservices_to_csv(_eservices(call, chosen)), "indicators-eservices.csv"
    else:
        found = _report(call, chosen)
        text = export.kpis_to_csv(found) if table == "kpis" else export.to_csv(found)
        name = "indicators-kpis.csv" if table == "kpis" else "indicators.csv"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _json(call: Call) -> Response:
    try:
        chosen = filters(call)
    except BadFilter as error:
        return _refused(error)
    table = call.query("table", 16)
    if table not in ("", "eservices"):
        return _refused("table is eservices, or none for the whole report.")
    if table == "eservices":
        body: dict[str, Any] = {
            "since": chosen.since.isoformat(),
            "until": chosen.until.isoformat(),
            "period": chosen.period,
            "sort": chosen.sort,
            "dir": _dir(chosen.descending),
            "eservices": [line.as_dict() for line in _eservices(call, chosen)],
        }
        name = "indicators-eservices.json"
    else:
        body, name = _report(call, chosen).as_dict(), "indicators.json"
    return JSONResponse(
        body,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


indicators_page = admin_view(_page)
indicators_csv = admin_view(_csv)
indicators_json = admin_view(_json)
