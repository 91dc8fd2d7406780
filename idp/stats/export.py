"""The dashboard's figures as CSV: one line per period, then the range (`to_csv`); the key
figures beside the range before (`kpis_to_csv`); the e-services side by side, in the order
shown (`eservices_to_csv`). The JSON export is `Report.as_dict()`."""

from __future__ import annotations

import csv
import io

from idp.stats.eservices import COLUMNS as ESERVICE_COLUMNS
from idp.stats.eservices import Eservice
from idp.stats.indicators import REPORTED, Report

COLUMNS = (
    "start",
    "started",
    "completed",
    "completion_rate",
    "failed",
    "abandoned",
    "citizens",
    "new_citizens",
    "returning_citizens",
    "completed_sso",
    "sso_share",
    "median_seconds",
    "p95_seconds",
    "consents_given",
    "consents_revoked",
    "signin_ratings",
    "signin_mean",
    "signin_satisfied",
    "eservice_ratings",
    "eservice_mean",
    "eservice_satisfied",
    *REPORTED,
)
KPI_COLUMNS = ("figure", "key", "value", "previous", "change")


def to_csv(report: Report) -> str:
    """Suppressed cells are empty; the last line (`start` = `total`) covers the whole range."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", *COLUMNS])
    rows = [(report.period, row.as_dict()) for row in report.rows]
    if report.total is not None:
        total = report.total.as_dict()
        total["start"] = f"{report.since.isoformat()}..{report.until.isoformat()}"
        rows.append(("total", total))
    for period, values in rows:
        writer.writerow([period, *("" if values[c] is None else values[c] for c in COLUMNS)])
    return out.getvalue()


def kpis_to_csv(report: Report) -> str:
    """One line per key figure (`key`: the level or reason within `assurance_mix` and
    `failure_reasons`), with the range before's value and the change; suppressed: empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KPI_COLUMNS)
    for line in report.kpis.lines() if report.kpis else []:
        writer.writerow(["" if value is None else value for value in line])
    return out.getvalue()


def eservices_to_csv(lines: list[Eservice]) -> str:
    """One line per e-service, ranked as on the page; suppressed or not reported: empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ESERVICE_COLUMNS)
    for line in lines:
        values = line.as_dict()
        writer.writerow(["" if values[c] is None else values[c] for c in ESERVICE_COLUMNS])
    return out.getvalue()
