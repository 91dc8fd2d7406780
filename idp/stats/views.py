"""The indicators dashboard of the admin console, and its CSV and JSON exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from starlette.responses import JSONResponse, Response

from idp.admin.pages import Call, admin_view, show
from idp.db.models import Client, StatsState
from idp.i18n import N_
from idp.stats import charts, export, indicators
from idp.stats.periods import NAMES
from idp.stats.rollup import STATE_ID

DEFAULT_DAYS = 30
CSV_TABLES = ("periods", "kpis")  # `?table=`: one line per period, or per key figure
MAX_PERIODS = {"d": 400, "w": 3 * 53, "m": 10 * 12}
PERIOD_LABELS = {"d": N_("Day"), "w": N_("Week"), "m": N_("Month")}
CHARTS = (
    ("completed", N_("Sign-ins completed")),
    ("citizens", N_("Unique citizens")),
    ("failed", N_("Failed sign-in steps")),
)


class BadFilter(ValueError):
    pass


@dataclass
class Filters:
    since: date
    until: date
    period: str
    client_id: str | None


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
    return Filters(since, until, period, call.query("client", 128) or None)


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


def _page(call: Call) -> Response:
    clients = list(call.db.execute(select(Client.client_id, Client.name).order_by(Client.name)))
    state = call.db.get(StatsState, STATE_ID)
    values = {n: call.query(n, 128) for n in ("since", "until", "period", "client")}
    try:
        chosen = filters(call)
    except BadFilter as error:
        return show(
            call,
            "admin/indicators.html",
            {
                "title": N_("Indicators"),
                "problem": str(error),
                "report": None,
                "values": values,
                "clients": clients,
                "periods": PERIOD_LABELS,
                "state": state,
            },
            status_code=400,
        )
    found = _report(call, chosen)
    labels = [row.start.isoformat() for row in found.rows]
    drawn = [
        (
            title,
            f"table-{metric}",
            charts.bar_chart(
                title, labels, [row.values[metric] for row in found.rows], "periods-table"
            ),
        )
        for metric, title in CHARTS
    ]
    values.update(
        since=chosen.since.isoformat(),
        until=chosen.until.isoformat(),
        period=chosen.period,
        client=chosen.client_id or "",
    )
    query = "&".join(f"{k}={v}" for k, v in values.items() if v)
    return show(
        call,
        "admin/indicators.html",
        {
            "title": N_("Indicators"),
            "report": found,
            "charts": drawn,
            "values": values,
            "clients": clients,
            "periods": PERIOD_LABELS,
            "state": state,
            "query": query,
        },
    )


def _csv(call: Call) -> Response:
    try:
        chosen = filters(call)
    except BadFilter as error:
        return JSONResponse({"error": "invalid_request", "error_description": str(error)}, 400)
    table = call.query("table", 16) or "periods"
    if table not in CSV_TABLES:
        return JSONResponse(
            {"error": "invalid_request", "error_description": "table is periods or kpis."}, 400
        )
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
        return JSONResponse({"error": "invalid_request", "error_description": str(error)}, 400)
    return JSONResponse(
        _report(call, chosen).as_dict(),
        headers={
            "Content-Disposition": 'attachment; filename="indicators.json"',
            "Cache-Control": "no-store",
        },
    )


indicators_page = admin_view(_page)
indicators_csv = admin_view(_csv)
indicators_json = admin_view(_json)
