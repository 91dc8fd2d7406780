"""The indicators dashboard over HTTP: each headline figure with its change, the e-services
side by side ranked by every column, the drill-down to one e-service, the range presets, the
exports of the e-services table, and bad filters refused with an error summary."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from idp import events
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import transactions
from idp.stats import rollup
from tests.admin.conftest import Console
from tests.signin.helpers import Citizen
from tests.stats.test_kpis import history as kpi_history

MARCH = "?since=2026-03-01&until=2026-03-31&period=m"


def _text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def tiles(page: str) -> dict[str, str]:
    """Each headline tile's text, by its title."""
    found = {}
    for block in re.findall(r'<li class="idp-tile">(.*?)</li>', page, re.S):
        title = _text(re.search(r"<h3[^>]*>(.*?)</h3>", block, re.S).group(1))  # type: ignore[union-attr]
        found[title] = _text(block)
    return found


def ranking(page: str) -> list[str]:
    """The e-services' names, top to bottom, in the table of the e-services side by side."""
    table = re.search(r'<table class="govuk-table idp-ranking".*?</table>', page, re.S)
    assert table is not None
    return [_text(n) for n in re.findall(r'<th scope="row"[^>]*>(.*?)</th>', table.group(0), re.S)]


def test_each_headline_figure_shows_its_value_and_change(
    runtime: Runtime, console: Console, admin: Citizen
) -> None:
    kpi_history(runtime)  # February, then March, of `tax` (tests/stats/test_kpis.py)
    page = console.open(admin, f"/admin/indicators{MARCH}&client=tax")
    assert page.status_code == 200, page.text
    shown = tiles(page.text)
    assert shown["Completion rate"] == (
        "Completion rate 75.0 % ▼ Down 25.0 percentage points from 100.0 %"
    )
    assert shown["User satisfaction"] == (
        "User satisfaction 57.1 % ▼ Down 42.9 percentage points from 100.0 %"
    )
    assert shown["Digital take-up"] == (
        "Digital take-up 79.8 % ▲ Up 19.8 percentage points from 60.0 %"
    )
    assert shown["Cost per transaction"] == "Cost per transaction AMD5.00 ● No change from AMD5.00"
    assert shown["Active citizens"] == "Active citizens 10 ▲ Up 4 from 6"
    assert shown["Second-factor adoption"] == (
        "Second-factor adoption 80.0 % ▲ Up 18.5 percentage points from 61.5 %"
    )
    assert shown["Single sign-on reuse"] == (
        "Single sign-on reuse 33.3 % ▲ Up 33.3 percentage points from 0.0 %"
    )
    assert shown["Median time to sign in"] == "Median time to sign in 50 s ▲ Up 30 s from 20 s"
    assert shown["Time to sign in, 95th percentile"] == (
        "Time to sign in, 95th percentile 100 s ▲ Up 80 s from 20 s"
    )
    # Three answers to our question: not shown, and why.
    assert shown["Sign-in ease"] == (
        "Sign-in ease not shown Too few to show (below the threshold), or none in this range."
    )
    assert (
        "Counted for all e-services together only."
        in shown["Adults with an active digital identity"]
    )
    # The drill-down: the e-service's name, the way back with the same range.
    assert '<h2 class="govuk-heading-l" id="eservice-heading">Tax service</h2>' in page.text
    assert (
        'href="/admin/indicators?since=2026-03-01&amp;until=2026-03-31&amp;period=m">'
        "All e-services</a>" in page.text
    )
    assert "idp-ranking" not in page.text  # one e-service: nothing to rank
    # Every chart names its table, and the table is in the page.
    described = re.findall(r'<svg class="idp-chart"[^>]*aria-describedby="([^"]+)"', page.text)
    assert len(described) == 10  # by month: take-up and cost per transaction too
    for table_id in described:
        assert f'<table class="govuk-table idp-compact-table" id="{table_id}">' in page.text
    assert "Counted up to" in page.text and "suppressed" in page.text


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _services(runtime: Runtime) -> None:
    """March: `alpha` 10 citizens, 20 started, its own ratings all 5, half online, 5.00 a
    transaction; `beta` 20 citizens, all completed, ratings all 1, 90 % online, 1.00;
    `gamma` 6 citizens, 8 started, ratings half 5, all online, 100.00."""
    plan = {
        # client: (citizens, started, scores, (online, in person), cost)
        "alpha": (10, 20, [5] * 5, (100, 100), 1000),
        "beta": (20, 20, [1] * 5, (90, 10), 100),
        "gamma": (6, 8, [5, 5, 5, 3, 3, 3], (10, 0), 1000),
    }
    user = 100
    lines, costs = ["client_id,month,channel,transactions"], ["client_id,month,amount"]
    with runtime.db.transaction() as db:
        for client in plan:
            client_service.register_client(
                db,
                client_service.NewClient(
                    name=client, client_id=client, redirect_uris=[f"https://{client}.example.am/cb"]
                ),
                actor="test",
            )
        for client, (citizens, started, scores, (online, other), cost) in plan.items():
            for number in range(started):
                when = at(date(2026, 3, 2 + number % 20))
                events.record(db, "signin.started", at=when, client_id=client)
                if number < citizens:
                    user += 1
                    events.record(
                        db,
                        "signin.completed",
                        at=when,
                        user_id=user,
                        client_id=client,
                        acr="substantial",
                        amr=["pwd"],
                        sso=False,
                        seconds=30,
                    )
            for score in scores:
                events.record(
                    db,
                    "feedback.rated",
                    at=at(date(2026, 3, 10)),
                    client_id=client,
                    source="eservice",
                    score=score,
                    on="2026-03-10",
                )
            lines.append(f"{client},2026-03,online,{online}")
            if other:
                lines.append(f"{client},2026-03,in_person,{other}")
            costs.append(f"{client},2026-03,{cost}")
        transactions.import_channel_totals(db, "\n".join(lines) + "\n", actor="test")
        transactions.import_costs(db, "\n".join(costs) + "\n", actor="test")
    rollup.run(runtime)


ORDERS = {
    # column: (first direction, the names in that order)
    "name": ("asc", ["alpha", "beta", "gamma"]),
    "completed": ("desc", ["beta", "alpha", "gamma"]),
    "completion_rate": ("desc", ["beta", "gamma", "alpha"]),
    "user_satisfaction": ("desc", ["alpha", "gamma", "beta"]),
    "digital_take_up": ("desc", ["gamma", "beta", "alpha"]),
    "cost_per_transaction": ("asc", ["beta", "alpha", "gamma"]),
}


def test_the_e_services_are_ranked_by_each_column_both_ways(
    runtime: Runtime, console: Console, admin: Citizen
) -> None:
    _services(runtime)
    assert console.open(admin, f"/admin/indicators{MARCH}").status_code == 200
    for column, (first, names) in ORDERS.items():
        other = "name" if column != "name" else "completed"
        page = console.get(f"/admin/indicators{MARCH}&sort={other}").text
        link = re.search(rf'href="([^"]*sort={column}[^"]*)#eservices-heading"', page)
        assert link is not None, column
        target = html.unescape(link.group(1))
        assert f"dir={first}" in target and "since=2026-03-01" in target, target
        ranked = console.get(f"/admin/indicators{target}").text
        assert [n for n in ranking(ranked) if n in names] == names, column
        assert f'aria-sort="{"ascending" if first == "asc" else "descending"}"' in ranked
        # The same column again: the other way round.
        again = re.search(rf'href="([^"]*sort={column}[^"]*)#eservices-heading"', ranked)
        assert again is not None
        reverse = console.get("/admin/indicators" + html.unescape(again.group(1))).text
        assert [n for n in ranking(reverse) if n in names] == list(reversed(names)), column


def test_the_e_services_table_figures_drill_down_and_exports(
    runtime: Runtime, console: Console, admin: Citizen
) -> None:
    _services(runtime)
    page = console.open(admin, f"/admin/indicators{MARCH}")
    rows = re.findall(r'<tr class="govuk-table__row">(.*?)</tr>', page.text, re.S)
    (row,) = [r for r in rows if ">alpha</a>" in r]
    assert _text(row) == "alpha 10 50.0 % 100.0 % 50.0 % AMD5.00"
    assert 'class="idp-sparkline"' not in row  # one month: no trend to draw
    drill = re.search(r'href="(/admin/indicators\?[^"]*client=alpha[^"]*)"', row)
    assert drill is not None
    target = html.unescape(drill.group(1))
    assert "since=2026-03-01" in target and "period=m" in target
    alpha = console.get(target).text
    assert 'id="eservice-heading">alpha</h2>' in alpha
    assert tiles(alpha)["Completion rate"].startswith("Completion rate 50.0 %")

    query = f"{MARCH}&sort=cost_per_transaction&dir=asc&table=eservices"
    exported = console.get(f"/admin/indicators.csv{query}")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = [
        r for r in csv.DictReader(io.StringIO(exported.text)) if r["client_id"] in ORDERS["name"][1]
    ]
    assert [r["client_id"] for r in lines] == ["beta", "alpha", "gamma"]
    assert lines[1] == {
        "client_id": "alpha",
        "name": "alpha",
        "started": "20",
        "completed": "10",
        "completion_rate": "0.5",
        "user_satisfaction": "1.0",
        "user_satisfaction_ratings": "5",
        "digital_take_up": "0.5",
        "cost_per_transaction": "5.0",
    }
    body: dict[str, Any] = console.get(f"/admin/indicators.json{query}").json()
    assert (body["sort"], body["dir"]) == ("cost_per_transaction", "asc")
    mine = [e for e in body["eservices"] if e["client_id"] in ORDERS["name"][1]]
    assert [e["client_id"] for e in mine] == ["beta", "alpha", "gamma"]
    assert mine[2]["cost_per_transaction"] == 100.0 and mine[2]["trend"] == [6]
    assert console.get(f"/admin/indicators.json{MARCH}&table=x").status_code == 400


def test_the_presets_are_links_that_keep_the_other_filters(
    runtime: Runtime, console: Console, admin: Citizen
) -> None:
    page = console.open(admin, "/admin/indicators?client=tax")
    today = datetime.now(UTC).date()
    links = dict(
        (_text(text), html.unescape(href))
        for href, text in re.findall(
            r'<a class="idp-presets__link" href="([^"]+)"[^>]*>(.*?)</a>', page.text
        )
    )
    week = today - timedelta(days=6)
    assert links["Last 7 days"] == f"?since={week}&until={today}&period=d&client=tax"
    last = today.replace(day=1) - timedelta(days=1)
    first = (last.replace(day=1) - timedelta(days=1)).replace(day=1)
    first = (first - timedelta(days=1)).replace(day=1)
    assert links["Last 3 whole months"] == f"?since={first}&until={last}&period=w&client=tax"
    assert set(links) == {
        "Last 7 days",
        "Last 30 days",
        "Last 3 whole months",
        "Last 12 whole months",
    }
    # The default range is the last 30 days: that link is marked as the current one.
    assert re.search(r'aria-current="true">Last 30 days<', page.text)
    chosen = console.get("/admin/indicators" + links["Last 3 whole months"]).text
    assert re.search(r'aria-current="true">Last 3 whole months<', chosen)
    assert "Dashboard" in chosen and 'href="/admin/indicators/costs"' in chosen


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=tomorrow", "Dates are written YYYY-MM-DD."),
        ("period=y", "Choose a day, week or month."),
        ("since=2026-03-05&until=2026-03-01", "The start of the range is after its end."),
        (
            "since=2020-01-01&until=2026-03-01&period=d",
            "The range is too long for this period; choose a longer period.",
        ),
    ],
)
def test_bad_filters_are_refused_with_an_error_summary(
    runtime: Runtime, console: Console, admin: Citizen, query: str, message: str
) -> None:
    page = console.open(admin, f"/admin/indicators?{query}")
    assert page.status_code == 400
    summary = re.search(r'<div class="govuk-error-summary".*?</div>\s*</div>', page.text, re.S)
    assert summary is not None and message in _text(summary.group(0))
    assert "<title>Error:" in page.text
    assert console.get(f"/admin/indicators.csv?{query}").status_code == 400
