"""The public statistics: the public e-services' monthly indicators, suppressed, with the
change against the month before, as cacheable open data described by a Data Package."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

from starlette.testclient import TestClient

from idp import events
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import transactions
from idp.stats import public, rollup
from tests.stats.test_kpis import history


def _register(runtime: Runtime, client_id: str, *, public_stats: bool) -> None:
    with runtime.db.transaction() as db:
        client_service.register_client(
            db,
            client_service.NewClient(
                name=client_id.title(),
                client_id=client_id,
                redirect_uris=[f"https://{client_id}.example.am/cb"],
            ),
            actor="test",
        )
        client_service.set_indicator_settings(
            db, client_id, public_stats=public_stats, actor="test"
        )


def test_the_public_e_services_month_by_month(runtime: Runtime) -> None:
    history(runtime)
    _register(runtime, "health", public_stats=True)
    _register(runtime, "court", public_stats=False)
    with runtime.db.transaction() as db:
        client_service.set_indicator_settings(db, "tax", public_stats=True, actor="test")
    with runtime.db.read() as db:
        found = public.monthly(db, min_cell=5, currency="AMD", today=date(2026, 3, 20), months=2)
    assert found.months == [date(2026, 2, 1), date(2026, 3, 1)]
    assert found.eservices == [("health", "Health"), ("tax", "Tax service")]
    rows = {(row["client_id"], row["month"]): row for row in found.rows}
    assert set(rows) == {
        ("health", "2026-02"),
        ("health", "2026-03"),
        ("tax", "2026-02"),
        ("tax", "2026-03"),
    }
    assert rows[("tax", "2026-03")] == {
        "month": "2026-03",
        "client_id": "tax",
        "eservice": "Tax service",
        "complete": False,  # 20 March: the month so far
        "sign_ins_started": 20,
        "sign_ins_completed": 15,
        "completion_rate": 0.75,
        "completion_rate_change": -0.25,
        "user_satisfaction": 0.5714,
        "user_satisfaction_ratings": 7,
        "user_satisfaction_change": -0.4286,
        "sign_in_ease": None,  # three answers
        "sign_in_ease_ratings": None,
        "digital_take_up": 0.7976,
        "digital_take_up_change": 0.1976,
        "transactions": 1003,
        "cost_per_transaction": 5.0,
        "cost_per_transaction_change": 0.0,
        "currency": "AMD",
    }
    assert rows[("tax", "2026-02")]["complete"] is True
    assert rows[("tax", "2026-02")]["completion_rate_change"] is None  # January: nothing
    # Health: three citizens in March, every sign-in figure suppressed.
    assert rows[("health", "2026-03")]["sign_ins_completed"] is None
    assert rows[("health", "2026-03")]["completion_rate"] is None
    text = public.to_csv(found)
    lines = list(csv.DictReader(io.StringIO(text)))
    assert len(lines) == 4
    assert lines[3]["completion_rate"] == "0.75" and lines[3]["sign_in_ease"] == ""
    assert lines[3]["complete"] == "false"
    assert json.loads(public.to_json(found))[3]["user_satisfaction"] == 0.5714


def test_the_open_data_is_described_and_cacheable(client: TestClient, runtime: Runtime) -> None:
    _register(runtime, "tax", public_stats=True)
    today = datetime.now(UTC)
    for user in range(1, 8):
        with runtime.db.transaction() as db:
            events.record(db, "signin.started", client_id="tax")
            events.record(
                db, "signin.completed", user_id=user, client_id="tax", sso=False, seconds=9
            )
    with runtime.db.transaction() as db:
        month = today.date().isoformat()[:7]
        transactions.set_channel_totals(
            db,
            [
                {"client_id": "tax", "month": month, "channel": "online", "transactions": 70},
                {"client_id": "tax", "month": month, "channel": "post", "transactions": 30},
            ],
            actor="test",
        )
    rollup.run(runtime)
    answer = client.get("/stats/kpis.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["cache-control"] == "public, max-age=300"
    tag = answer.headers["etag"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 12 and rows[-1]["month"] == month
    assert (rows[-1]["sign_ins_completed"], rows[-1]["digital_take_up"]) == ("7", "0.7")
    again = client.get("/stats/kpis.csv", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    other = client.get("/stats/kpis.csv", headers={"If-None-Match": '"old"'})
    assert other.status_code == 200
    as_json = client.get("/stats/kpis.json")
    assert as_json.json()[-1]["digital_take_up"] == 0.7
    assert as_json.headers["etag"] != tag
    package = client.get("/stats/datapackage.json")
    assert package.status_code == 200 and package.headers["etag"]
    described = package.json()
    (table, same) = described["resources"]
    assert table["path"] == "kpis.csv" and same["path"] == "kpis.json"
    assert [f["name"] for f in table["schema"]["fields"]] == list(rows[0])
    assert described["homepage"] == "http://localhost:8000/stats"
