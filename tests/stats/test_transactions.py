"""Transactions by channel and costs: set as lists or imported as CSV, by the admin API and the
command line, all lines or none, a bad line named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.cli import main
from idp.config import Settings
from idp.db.models import ChannelTotal, Event, ServiceCost
from idp.runtime import Runtime
from idp.services import InvalidInput, transactions
from tests.admin.api_helpers import admin_client, token
from tests.signin.helpers import add_client
from tests.test_cli import count

API = "/admin/api/v1"
SAME = "line 6: the same e-service, month and channel as line 2"
GOOD = (
    "client_id,month,channel,transactions\n"
    "tax,2026-01,online,900\n"
    "tax,2026-01,in_person,100\n"
    "\n"
    "tax,2026-02,online,1200\n"
)


def _stored(runtime: Runtime) -> dict[tuple[str, str, str], int]:
    with runtime.db.read() as db:
        return {
            (row.client_id, row.month.isoformat()[:7], row.channel): row.transactions
            for row in db.scalars(select(ChannelTotal))
        }


def _import(runtime: Runtime, text: str) -> int:
    with runtime.db.transaction() as db:
        return transactions.import_channel_totals(db, text.encode(), actor="test")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (GOOD + "health,2026-02,online,5\n", "line 6: there is no e-service 'health'"),
        (GOOD.replace("2026-02", "2026-2"), "line 5: the month must be written YYYY-MM: '2026-2'"),
        (GOOD.replace("2026-02", "2026-13"), "line 5: the month must be written YYYY-MM"),
        (GOOD.replace("2026-02", "2999-01"), "line 5: the month 2999-01 has not begun yet"),
        (GOOD.replace(",100", ",-100"), "line 3: transactions must be a whole number"),
        (GOOD.replace(",100", ",10.5"), "line 3: transactions must be a whole number"),
        (GOOD.replace(",100", ","), "line 3: transactions must be a whole number"),
        (GOOD.replace("in_person", "fax"), "line 3: the channel 'fax' is not one of online"),
        (
            GOOD + "tax,2026-01,online,5\n",
            "line 6: the same e-service, month and channel as line 2",
        ),
        (GOOD + "tax,2026-03\n", "line 6: 4 values expected, 2 found"),
        (GOOD.replace("transactions\n", "count\n", 1), "line 1: the columns must be client_id"),
        ("\n\n", "the file is empty"),
        ("client_id,month,channel,transactions\n", "there are no rows to write"),
        (GOOD + 'tax,"2026-03,online,1\n', "not valid CSV"),
    ],
)
def test_a_bad_file_is_refused_naming_its_line_and_nothing_is_written(
    runtime: Runtime, text: str, reason: str
) -> None:
    add_client(runtime)
    _import(runtime, "client_id,month,channel,transactions\ntax,2025-12,online,7\n")
    with pytest.raises(InvalidInput) as refused:
        _import(runtime, text)
    assert reason in str(refused.value)
    assert _stored(runtime) == {("tax", "2025-12", "online"): 7}  # as it was


def test_a_good_file_is_stored_and_a_second_one_replaces_its_rows(runtime: Runtime) -> None:
    add_client(runtime)
    assert _import(runtime, "\ufeff" + GOOD) == 3  # a byte-order mark is fine
    assert _import(runtime, "CLIENT_ID,Month,Channel,Transactions\ntax,2026-02,online,1300\n")
    assert _stored(runtime) == {
        ("tax", "2026-01", "online"): 900,
        ("tax", "2026-01", "in_person"): 100,
        ("tax", "2026-02", "online"): 1300,
    }
    with pytest.raises(InvalidInput, match="not UTF-8"), runtime.db.transaction() as db:
        transactions.import_channel_totals(db, "tax,2026-01,online,1".encode("utf-16"), actor="t")


def test_costs_keep_two_decimals_and_refuse_more(runtime: Runtime) -> None:
    add_client(runtime)
    with runtime.db.transaction() as db:
        text = "client_id,month,amount\ntax,2026-01,1250000.50\ntax,2026-02,0\n"
        assert transactions.import_costs(db, text, actor="test") == 2
    for bad, reason in (
        ("tax,2026-03,12.345", "line 2: the amount must be a number from 0 with at most two"),
        ("tax,2026-03,-1", "line 2: the amount"),
        ("tax,2026-03,1e400", "line 2: the amount"),
        ("tax,2026-03,NaN", "line 2: the amount"),
        ("tax,2026-01,5\ntax,2026-01,6", "line 3: the same e-service and month as line 2"),
    ):
        with pytest.raises(InvalidInput) as refused, runtime.db.transaction() as db:
            transactions.import_costs(db, "client_id,month,amount\n" + bad, actor="test")
        assert reason in str(refused.value)
    with runtime.db.read() as db:
        rows = transactions.costs(db, transactions.MonthFilter(), currency="AMD")
    assert rows == [
        {"client_id": "tax", "month": "2026-01", "amount": 1250000.5, "currency": "AMD"},
        {"client_id": "tax", "month": "2026-02", "amount": 0.0, "currency": "AMD"},
    ]


def test_the_admin_api_sets_imports_and_lists_totals_costs_and_flags(
    client: TestClient, runtime: Runtime
) -> None:
    add_client(runtime)
    bearer = {"Authorization": f"Bearer {token(client, admin_client(runtime))}"}
    item = {"client_id": "tax", "month": "2026-01", "channel": "online", "transactions": 10}
    stored = client.post(f"{API}/channel-totals", json={"items": [item]}, headers=bearer)
    assert stored.status_code == 200 and stored.json() == {"written": 1}
    unknown = client.post(
        f"{API}/channel-totals",
        json={"items": [item, {**item, "client_id": "nope"}]},
        headers=bearer,
    )
    assert unknown.status_code == 400
    assert unknown.json()["error_description"] == "item 2: there is no e-service 'nope'"
    imported = client.post(
        f"{API}/channel-totals/import",
        content=GOOD.encode(),
        headers={**bearer, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert imported.status_code == 200 and imported.json() == {"written": 3}
    bad = client.post(
        f"{API}/channel-totals/import",
        content=(GOOD + "tax,2026-02,post,-1\n").encode(),
        headers={**bearer, "Content-Type": "text/csv"},
    )
    assert bad.status_code == 400 and bad.json()["error_description"].startswith("line 6:")
    as_json = client.post(
        f"{API}/channel-totals/import",
        content=GOOD.encode(),
        headers={**bearer, "Content-Type": "application/json"},
    )
    assert as_json.status_code == 415
    listed = client.get(f"{API}/channel-totals", params={"since": "2026-02"}, headers=bearer)
    assert listed.json()["items"] == [
        {"client_id": "tax", "month": "2026-02", "channel": "online", "transactions": 1200}
    ]
    assert client.get(f"{API}/costs", params={"until": "May"}, headers=bearer).status_code == 400
    costs = client.post(
        f"{API}/costs",
        json={"items": [{"client_id": "tax", "month": "2026-01", "amount": 99.99}]},
        headers=bearer,
    )
    assert costs.json() == {"written": 1}
    assert client.get(f"{API}/costs", headers=bearer).json()["items"][0]["amount"] == 99.99
    flags = client.post(
        f"{API}/clients/tax/indicator-settings",
        json={"public_stats": True, "feedback_sampling_rate": 0.1},
        headers=bearer,
    )
    assert flags.status_code == 200
    assert (flags.json()["public_stats"], flags.json()["feedback_sampling_rate"]) == (True, 0.1)
    too_high = client.post(
        f"{API}/clients/tax/indicator-settings",
        json={"feedback_sampling_rate": 1.5},
        headers=bearer,
    )
    assert too_high.status_code == 400
    assert client.get(f"{API}/feedback/comments", headers=bearer).json() == {
        "items": [],
        "total": 0,
    }
    with runtime.db.read() as db:
        audited = [
            (e.type, e.actor, e.data.get("via"))
            for e in db.scalars(select(Event).where(Event.type.like("admin.%_set")))
        ]
    assert audited == [
        ("admin.channel_totals_set", "api:ops-console", "list"),
        ("admin.channel_totals_set", "api:ops-console", "csv"),
        ("admin.costs_set", "api:ops-console", "list"),
    ]


def test_the_command_line_imports_all_lines_or_none(
    cli_env: Settings, runtime: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_client(runtime)
    channels = tmp_path / "channels.csv"
    channels.write_text(GOOD + "tax,2026-02,phone,-3\n")
    assert main(["stats", "import-channels", str(channels)]) == 1
    _out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        "error: line 6: transactions must be a whole number from 0 to 1000000000000: '-3'"
    ]
    assert count(cli_env, ChannelTotal) == 0
    channels.write_text(GOOD)
    assert main(["stats", "import-channels", str(channels), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"written": 3}
    costs = tmp_path / "costs.csv"
    costs.write_text("client_id,month,amount\ntax,2026-01,100.10\n")
    assert main(["stats", "import-costs", str(costs)]) == 0
    assert "1 monthly costs stored" in capsys.readouterr().out
    assert count(cli_env, ServiceCost) == 1
    assert main(["stats", "import-costs", str(tmp_path / "missing.csv")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["stats", "eservice", "tax", "--public", "--sampling-rate", "0.25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "client_id": "tax",
        "public_stats": True,
        "feedback_sampling_rate": 0.25,
    }
    assert main(["stats", "eservice", "nope"]) == 1
    assert "no client 'nope'" in capsys.readouterr().err
