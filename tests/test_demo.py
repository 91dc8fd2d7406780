"""`make run` (`idp demo`) on a fresh folder: the provider and both e-services answer, with the
demo credentials printed, and Ctrl-C stops all three."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from idp import demo, demo_history
from idp.db.models import Client
from idp.runtime import Runtime
from idp.services import audit as audit_service
from idp.stats import indicators, rollup
from idp.stats import public as stats_public

PORTS = (8000, 8001, 8002)
APRIL = date(2026, 4, 1)


def _wait(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {log.read_text()[-3000:]}")


def test_demo_starts_the_provider_and_both_eservices(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    log = tmp_path / "demo.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "idp", "demo"],
            cwd=tmp_path,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        _wait("http://127.0.0.1:8000/.well-known/openid-configuration", process, log)
        _wait("http://127.0.0.1:8001/", process, log)
        _wait("http://127.0.0.1:8002/jwks.json", process, log)
        discovery = httpx.get("http://127.0.0.1:8000/.well-known/openid-configuration").json()
        assert discovery["issuer"] == "http://localhost:8000"
        printed = log.read_text()
        assert re.search(r"username demo\s+password \S{8,}", printed)
        assert "http://localhost:8001" in printed and "http://localhost:8002" in printed
        # The first look at the indicators already shows 90 days of demo data.
        assert "DEMO DATA" in printed and "username demo-admin" in printed
        rows = httpx.get("http://127.0.0.1:8000/stats/kpis.json").json()
        assert len({row["client_id"] for row in rows}) == 5
        latest = max(row["month"] for row in rows if row["complete"])
        last_month = [row for row in rows if row["month"] == latest]
        assert len(last_month) == 5
        assert all(row["sign_ins_completed"] and row["digital_take_up"] for row in last_month)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    for port in PORTS:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    # Everything it made stays in the folder it ran in.
    assert (tmp_path / "data" / "idp.db").exists()
    assert len(list((tmp_path / "keys").glob("*.json"))) == 2


def test_the_demo_history_fills_every_indicator_once(runtime: Runtime) -> None:
    """Five e-services, 90 days: every key figure of each is there at the first look, the
    audit chain holds the history, and a second start adds nothing."""
    demo.seed(runtime)
    today = date(2026, 5, 14)
    assert demo_history.seed(runtime, today=today)
    assert rollup.run(runtime, now=datetime(2026, 5, 14, 12, tzinfo=UTC)) > 10000
    assert not demo_history.seed(runtime, today=today)
    with runtime.db.read() as db:
        assert audit_service.verify(db).ok
        public = stats_public.monthly(db, min_cell=5, currency="AMD", today=today)
        whole = indicators.report(
            db,
            since=date(2026, 4, 1),
            until=date(2026, 4, 30),
            period="m",
            adult_population=2_000_000,
        )
        named = set(db.scalars(select(Client.name).where(Client.public_stats.is_(True))))
    assert len(public.eservices) == 5
    assert {"e-tax (demo data)", "e-social (demo data)", "e-health (demo data)"} <= named
    april = [row for row in public.rows if row["month"] == "2026-04"]
    assert len(april) == 5
    for row in april:
        for kpi in (
            "completion_rate",
            "user_satisfaction",
            "digital_take_up",
            "cost_per_transaction",
        ):
            assert row[kpi], (row["client_id"], kpi)
    assert whole.kpis is not None
    for name in (
        "completion_rate",
        "user_satisfaction",
        "signin_satisfaction",
        "digital_take_up",
        "cost_per_transaction",
        "active_citizens",
        "adult_population_share",
        "second_factor_adoption",
        "sso_reuse",
        "median_seconds",
    ):
        figure = whole.kpis.figures[name]
        assert figure.value and figure.previous, name
    assert whole.kpis.failure_reasons and whole.breakdowns["abandoned"]
