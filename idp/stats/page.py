"""The public statistics page, `/stats`: for anyone, no sign-in, in the reader's language.

For each e-service an administrator made public (`public_stats`) it shows the latest complete
month (completion rate, user satisfaction, sign-in ease, digital take-up and cost per
transaction, each with its change against the month before) and a table of the last twelve
months, from `idp.stats.public.monthly`, the figures of the open data downloads it links to. A
figure not shown (about too few citizens, ratings or transactions, or not reported) says so.

The page is cacheable as the downloads are: a strong `ETag` of its bytes, 304 for a client
that has them. Its language comes from `?lang=`, the language cookie or `Accept-Language`
(`idp.i18n.negotiate`), and the header links to the account when a session cookie is sent,
so the answer varies by `Accept-Language` and `Cookie` (the address holds `?lang=`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp.datetimes import babel_locale
from idp.i18n import N_, negotiate
from idp.runtime import Runtime
from idp.stats import opendata
from idp.templating import render

SHARE, MONEY = "share", "money"
# The summary's figures: (name in `public.FIELDS`, title, kind, how many it is about).
SUMMARY = (
    ("completion_rate", N_("Completion rate"), SHARE, "sign_ins_started"),
    ("user_satisfaction", N_("User satisfaction"), SHARE, "user_satisfaction_ratings"),
    ("sign_in_ease", N_("Sign-in ease"), SHARE, "sign_in_ease_ratings"),
    ("digital_take_up", N_("Digital take-up"), SHARE, "transactions"),
    ("cost_per_transaction", N_("Cost per transaction"), MONEY, "transactions"),
)
EXPLAINED = {
    "completion_rate": N_("Sign-ins completed out of those started."),
    "user_satisfaction": N_("Ratings of 4 or 5 out of 5 the e-service received for its service."),
    "sign_in_ease": N_("Citizens asked after signing in who found it easy (4 or 5 out of 5)."),
    "digital_take_up": N_("Transactions done online out of those of every channel."),
    "cost_per_transaction": N_("What the e-service cost in the month over its transactions."),
}
TOO_FEW = N_("Not shown: too few")
NOT_REPORTED = N_("Not shown: too few, or not reported")


@dataclass(frozen=True)
class Shown:
    """A figure as the page writes it: its text (None: not shown) and its change."""

    text: str | None
    change: str | None
    direction: str  # "up", "down", "same" or "" (no change shown)


def _number(value: float, locale: str, digits: int) -> str:
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return format_decimal(value, format=pattern, locale=babel_locale(locale))


def _figure(value: Any, previous: Any, kind: str, locale: str, currency: str) -> Shown:
    if value is None:
        return Shown(None, None, "")
    if kind == SHARE:
        text = _number(value * 100, locale, 1) + " %"
    else:
        text = f"{_number(value, locale, 2)} {currency}"
    if previous is None:
        return Shown(text, None, "")
    difference = value - previous
    if kind == SHARE:
        amount = _number(abs(difference) * 100, locale, 1)
    else:
        amount = f"{_number(abs(difference), locale, 2)} {currency}"
    direction = "same" if abs(difference) < 1e-9 else "up" if difference > 0 else "down"
    return Shown(text, amount, direction)


def _month_name(month: str, locale: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return format_date(date(year, number, 1), "LLLL yyyy", locale=babel_locale(locale))


def _eservice(
    client_id: str, name: str, rows: list[dict[str, Any]], locale: str, currency: str
) -> dict[str, Any]:
    """One e-service's summary (the latest complete month against the one before) and its
    months, newest first, each figure as the page writes it."""
    mine = [row for row in rows if row["client_id"] == client_id]
    complete = [row for row in mine if row["complete"]]
    latest = complete[-1] if complete else None
    before = complete[-2] if len(complete) > 1 else None
    summary = []
    for field, title, kind, about in SUMMARY:
        value = latest[field] if latest else None
        previous = before[field] if before else None
        summary.append(
            {
                "field": field,
                "kind": kind,
                "title": title,
                "explained": EXPLAINED[field],
                "shown": _figure(value, previous, kind, locale, currency),
                "missing": NOT_REPORTED if about == "transactions" else TOO_FEW,
            }
        )
    months = []
    for row in reversed(mine):
        months.append(
            {
                "month": _month_name(row["month"], locale),
                "complete": row["complete"],
                "cells": [
                    _figure(row[field], None, kind, locale, currency).text
                    for field, _title, kind, _about in SUMMARY
                ],
                "sign_ins": row["sign_ins_completed"],
                "transactions": row["transactions"],
            }
        )
    return {
        "client_id": client_id,
        "name": name,
        "latest": _month_name(latest["month"], locale) if latest else None,
        "before": _month_name(before["month"], locale) if before else None,
        "summary": summary,
        "months": months,
    }


async def stats_page(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    stats = await run_in_threadpool(opendata.figures, runtime)
    locale = negotiate(request)
    eservices = [
        _eservice(client_id, name, stats.rows, locale, stats.currency)
        for client_id, name in stats.eservices
    ]
    page = render(
        request,
        "stats/public.html",
        {
            "title": N_("Statistics of the e-services"),
            "eservices": eservices,
            "columns": [title for _field, title, _kind, _about in SUMMARY],
            "min_cell": stats.min_cell,
            "currency": stats.currency,
        },
        locale=locale,
    )
    body = page.rendered()
    tag = opendata.etag(body)
    chosen = any(name == b"set-cookie" for name, _value in page.raw_headers)
    headers = {
        "ETag": tag,
        # A page that also stores the language just chosen is for this browser only.
        "Cache-Control": "private, no-cache" if chosen else f"public, max-age={opendata.MAX_AGE}",
        "Vary": "Accept-Language, Cookie",
    }
    if opendata.matches(request, tag):
        unchanged = Response(status_code=304, headers=headers)
        unchanged.raw_headers += [pair for pair in page.raw_headers if pair[0] == b"set-cookie"]
        return unchanged
    page.headers.update(headers)
    return page
