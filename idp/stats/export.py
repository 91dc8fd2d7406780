"""The dashboard's figures as CSV (one line per period, then the range) and JSON."""

from __future__ import annotations

import csv
import io

from idp.stats.indicators import Report

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
)


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
