"""The public statistics page `/stats`: only the e-services made public, their latest complete
month against the one before, figures not shown said so, three languages, cacheable."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

from starlette.testclient import TestClient

from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import transactions
from idp.stats import rollup
from idp.stats.periods import start_of
from tests.signin.helpers import add_client
from tests.stats.test_kpis import record, signin


def _months() -> tuple[date, date]:
    """The latest complete month and the one before it."""
    this = start_of("m", datetime.now(UTC).date())
    latest = start_of("m", this - timedelta(days=1))
    return latest, start_of("m", latest - timedelta(days=1))


def _history(runtime: Runtime) -> tuple[date, date]:
    """`tax` (public): 6 of 6 sign-ins completed the month before, 8 of 10 in the latest
    month, when it reported 700 online and 300 postal transactions and a cost of 5000.
    `secret` (not public) has as much, and never appears."""
    latest, before = _months()
    add_client(runtime)
    with runtime.db.transaction() as db:
        client_service.register_client(
            db,
            client_service.NewClient(
                name="Secret registry",
                client_id="secret",
                redirect_uris=["https://secret.example.am/cb"],
            ),
            actor="test",
        )
        client_service.set_indicator_settings(db, "tax", public_stats=True, actor="test")
    for user in range(1, 7):
        signin(runtime, before + timedelta(days=2), user)
    for user in range(1, 9):
        signin(runtime, latest + timedelta(days=2), user)
        signin(runtime, latest + timedelta(days=2), user, client="secret")
    for _ in range(2):
        when = datetime(latest.year, latest.month, 4, 9, tzinfo=UTC)
        record(runtime, when, "signin.started", client_id="tax")
    month = latest.isoformat()[:7]
    with runtime.db.transaction() as db:
        transactions.import_channel_totals(
            db,
            "client_id,month,channel,transactions\n"
            f"tax,{month},online,700\ntax,{month},post,300\n"
            f"secret,{month},online,900\n",
            actor="test",
        )
        transactions.import_costs(
            db, f"client_id,month,amount\ntax,{month},5000\nsecret,{month},1\n", actor="test"
        )
    rollup.run(runtime)
    return latest, before


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _tiles(html: str) -> dict[str, str]:
    """Each figure's tile in the summary: {title: what it says}."""
    found = re.findall(r'<li class="idp-tile">(.*?)</li>', html, re.S)
    tiles = {}
    for tile in found:
        title = re.search(r"<h4[^>]*>(.*?)</h4>", tile, re.S)
        assert title is not None
        tiles[_text(title.group(1))] = _text(tile[title.end() :])
    return tiles


def test_the_page_shows_the_public_e_services_only(client: TestClient, runtime: Runtime) -> None:
    latest, before = _history(runtime)
    page = client.get("/stats", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'lang="en"' in page.text
    assert "Tax service" in page.text
    assert "Secret registry" not in page.text and "secret" not in _text(page.text).lower()
    latest_name = latest.strftime("%B %Y")
    assert f'<h3 class="govuk-heading-m">{latest_name}</h3>' in page.text
    assert f"Each change is against {before.strftime('%B %Y')}." in page.text
    tiles = _tiles(page.text)
    assert tiles["Completion rate"].startswith(
        "80.0 % Down 20.0 percentage points Sign-ins completed"
    )
    assert tiles["User satisfaction"].startswith("Not shown: too few Ratings of 4 or 5")
    assert tiles["Sign-in ease"].startswith("Not shown: too few")
    assert tiles["Digital take-up"].startswith(
        "70.0 % No change shown: the month before is not shown"
    )
    assert tiles["Cost per transaction"].startswith("5.00 AMD No change shown")
    # Twelve months in the table, newest first: the current month so far, then the latest.
    table = re.search(r"<tbody.*?</tbody>", page.text, re.S)
    assert table is not None
    rows = re.findall(r"<tr.*?</tr>", table.group(0), re.S)
    assert len(rows) == 12
    assert _text(rows[1]) == (  # a figure not shown: a dash, "not shown" to a screen reader
        f"{latest_name} 80.0 % \u2013 not shown \u2013 not shown 70.0 % 5.00 AMD 8 1000"
    )
    assert 'class="idp-scroll" role="region"' in page.text and 'tabindex="0"' in page.text
    for download in ("/stats/kpis.csv", "/stats/kpis.json", "/stats/datapackage.json"):
        assert f'href="{download}"' in page.text
    assert "secret" not in client.get("/stats/kpis.csv").text


def test_three_languages_each_cacheable(client: TestClient, runtime: Runtime) -> None:
    _history(runtime)
    english = client.get("/stats", headers={"Accept-Language": "en"})
    assert english.headers["cache-control"] == "public, max-age=300"
    assert english.headers["vary"] == "Accept-Language, Cookie"
    tag = english.headers["etag"]
    again = client.get("/stats", headers={"Accept-Language": "en", "If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    armenian = client.get("/stats", headers={"Accept-Language": "hy"})
    assert armenian.status_code == 200 and 'lang="hy"' in armenian.text
    assert "Էլեկտրոնային ծառայությունների վիճակագրություն" in armenian.text
    assert "80,0 %" in armenian.text
    assert armenian.headers["etag"] != tag
    stale = client.get("/stats", headers={"Accept-Language": "hy", "If-None-Match": tag})
    assert stale.status_code == 200  # the English page's tag is not the Armenian page's
    russian = client.get("/stats", params={"lang": "ru"})
    assert 'lang="ru"' in russian.text and "Статистика электронных услуг" in russian.text
    assert "idp_lang=ru" in russian.headers["set-cookie"]
    assert russian.headers["cache-control"] == "private, no-cache"  # it stores the choice
    chosen = client.get("/stats")  # the cookie now says Russian
    assert 'lang="ru"' in chosen.text
    assert chosen.headers["cache-control"] == "public, max-age=300"


def test_no_public_e_service_yet(client: TestClient, runtime: Runtime) -> None:
    add_client(runtime)
    page = client.get("/stats", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "No e-service publishes its figures yet." in page.text
    assert "Tax service" not in page.text
    assert 'href="/stats/kpis.csv"' in page.text
