"""The public statistics: the key indicators of the e-services an administrator made public
(`public_stats`), month by month, each with its change against the month before.

`monthly` gives the figures the `/stats` page shows; `to_csv`, `to_json` and `datapackage`
are the open data downloads (a Frictionless Data Package describes both). Every figure is
suppressed as on the dashboard (docs/indicators.md): a month of an e-service with fewer than
`stats_min_cell` citizens shows no sign-in figures, and ratings and transactions are shown
only from `stats_min_cell` up.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.db.models import Client, StatsCount
from idp.stats.indicators import period_row
from idp.stats.kpis import Figure, Number, reported, reported_cells, service_standard
from idp.stats.periods import next_start, start_of

MONTHS = 12  # months shown, the current one included
# (name, Table Schema type, description); `*_change`: against the month before.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("month", "yearmonth", "The calendar month (UTC)."),
    ("client_id", "string", "The e-service's identifier."),
    ("eservice", "string", "The e-service's name."),
    ("complete", "boolean", "Whether the month has ended (false: the month so far)."),
    ("sign_ins_started", "integer", "Sign-ins the e-service asked citizens for."),
    ("sign_ins_completed", "integer", "Sign-ins that ended with the citizen signed in."),
    ("completion_rate", "number", "Sign-ins completed over sign-ins started (0-1)."),
    ("completion_rate_change", "number", "Change of the completion rate, in points of 0-1."),
    (
        "user_satisfaction",
        "number",
        "Share of the e-service's own ratings of its transactions that were 4 or 5 of 5 (0-1).",
    ),
    ("user_satisfaction_ratings", "integer", "How many ratings the e-service reported."),
    ("user_satisfaction_change", "number", "Change of user satisfaction, in points of 0-1."),
    (
        "sign_in_ease",
        "number",
        "Share of citizens asked after signing in who found it easy: 4 or 5 of 5 (0-1).",
    ),
    ("sign_in_ease_ratings", "integer", "How many citizens answered that question."),
    (
        "digital_take_up",
        "number",
        "Online transactions over the transactions of every channel, as reported (0-1).",
    ),
    ("digital_take_up_change", "number", "Change of digital take-up, in points of 0-1."),
    ("transactions", "integer", "Transactions of every channel, as the e-service reported."),
    (
        "cost_per_transaction",
        "number",
        "The e-service's cost in the month over its transactions, in `currency`.",
    ),
    ("cost_per_transaction_change", "number", "Change of the cost per transaction."),
    ("currency", "string", "ISO 4217 code of the currency of costs."),
)
KPIS = ("completion_rate", "user_satisfaction", "digital_take_up", "cost_per_transaction")


@dataclass
class PublicStats:
    """The public e-services `(client_id, name)`, the months shown (oldest first), and one
    row per e-service and month (`FIELDS`, suppressed cells None)."""

    months: list[date]
    eservices: list[tuple[str, str]]
    currency: str
    min_cell: int
    rows: list[dict[str, Any]] = field(default_factory=list)


def _months(today: date, count: int) -> list[date]:
    month = start_of("m", today)
    found = [month]
    while len(found) < count:
        month = start_of("m", month - timedelta(days=1))
        found.append(month)
    return sorted(found)


def monthly(
    db: Session,
    *,
    min_cell: int,
    currency: str,
    today: date | None = None,
    months: int = MONTHS,
) -> PublicStats:
    """The public figures of the last `months` months (the current one so far included)."""
    today = today or datetime.now(UTC).date()
    shown_months = _months(today, months)
    counted = _months(today, months + 1)  # and the month before the first, for its change
    services = list(
        db.execute(
            select(Client.client_id, Client.name)
            .where(Client.public_stats.is_(True), Client.disabled_at.is_(None))
            .order_by(Client.name, Client.client_id)
        )
    )
    found = PublicStats(shown_months, [(c, n) for c, n in services], currency, min_cell, rows=[])
    ids = [client_id for client_id, _name in services]
    if not ids:
        return found
    cells: dict[tuple[str, date], dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    query = select(
        StatsCount.client_id, StatsCount.start, StatsCount.metric, StatsCount.dim, StatsCount.value
    ).where(
        StatsCount.period == "m",
        StatsCount.client_id.in_(ids),
        StatsCount.start >= counted[0],
        StatsCount.start <= counted[-1],
    )
    for client_id, start, metric, dim, value in db.execute(query):
        cells[(client_id, start)][metric][dim] = int(value)
    channels, costs = reported_cells(db, ids, counted)
    for client_id, name in services:
        mine = {key: value for key, value in channels.items() if key[0] == client_id}
        previous: dict[str, Number] = {}
        for month in counted:
            row = period_row(month, cells.get((client_id, month), {}), min_cell)
            money = reported(mine, costs, [month], min_cell)
            rated = row.satisfaction
            figures = service_standard(row.completion_rate, rated, money)
            if month in shown_months:
                found.rows.append(
                    {
                        "month": month.isoformat()[:7],
                        "client_id": client_id,
                        "eservice": name,
                        "complete": next_start("m", month) <= today,
                        "sign_ins_started": row.values["started"],
                        "sign_ins_completed": row.values["completed"],
                        "completion_rate": figures["completion_rate"],
                        "user_satisfaction": figures["user_satisfaction"],
                        "user_satisfaction_ratings": rated["eservice"]["ratings"],
                        "sign_in_ease": rated["signin"]["satisfied"],
                        "sign_in_ease_ratings": rated["signin"]["ratings"],
                        "digital_take_up": figures["digital_take_up"],
                        "transactions": money.transactions,
                        "cost_per_transaction": figures["cost_per_transaction"],
                        "currency": currency,
                        **{
                            f"{kpi}_change": Figure(figures[kpi], previous.get(kpi)).change
                            for kpi in KPIS
                        },
                    }
                )
            previous = figures
    return found


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_csv(stats: PublicStats) -> str:
    """One line per e-service and month, in `FIELDS` order; suppressed cells are empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([name for name, _type, _description in FIELDS])
    for row in stats.rows:
        writer.writerow([_cell(row[name]) for name, _type, _description in FIELDS])
    return out.getvalue()


def to_json(stats: PublicStats) -> str:
    """The same rows as a JSON array of objects (`FIELDS`; suppressed: null)."""
    rows = [{name: row[name] for name, _type, _description in FIELDS} for row in stats.rows]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def datapackage(*, issuer: str, min_cell: int) -> dict[str, Any]:
    """The Frictionless Data Package that describes the downloads (paths relative to it)."""
    schema: dict[str, Any] = {
        "fields": [
            {"name": name, "type": kind, "description": description}
            for name, kind, description in FIELDS
        ],
        "primaryKey": ["month", "client_id"],
        "missingValues": [""],
    }
    described = (
        "The key performance indicators of the e-services that sign citizens in with the "
        f"national digital identity ({issuer}), by month. A figure about fewer than {min_cell} "
        "citizens, ratings or transactions is left empty (suppressed); see the provider's "
        "docs/indicators.md for every definition."
    )
    return {
        "profile": "tabular-data-package",
        "name": "digital-identity-service-kpis",
        "title": "E-services: key performance indicators by month",
        "description": described,
        "homepage": f"{issuer}/stats",
        "resources": [
            {
                "profile": "tabular-data-resource",
                "name": "kpis",
                "path": "kpis.csv",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "dialect": {"delimiter": ",", "lineTerminator": "\n", "header": True},
                "schema": schema,
            },
            {
                "profile": "tabular-data-resource",
                "name": "kpis-json",
                "path": "kpis.json",
                "format": "json",
                "mediatype": "application/json",
                "encoding": "utf-8",
                "schema": schema,
            },
        ],
    }
