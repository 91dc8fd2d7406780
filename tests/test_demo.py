"""`make run` (`idp demo`) on a fresh folder: the provider and both e-services answer, the demo
credentials are printed last, every port follows `--port`, and Ctrl-C stops all three."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
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
from tests.server import free_port

BANNER = "National digital-identity provider: demo"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _three_free_ports() -> int:
    """A port P such that P, P+1 and P+2 are free."""
    for _ in range(100):
        port = free_port()
        if port + 2 <= 65535 and _free(port + 1) and _free(port + 2):
            return port
    raise AssertionError("no three free ports in a row")


def _idp(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "idp", *args],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _wait(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {log.read_text()[-3000:]}")


def _wait_for_banner(log: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        printed = log.read_text()
        if "Press Ctrl-C to stop everything." in printed:
            return printed
        time.sleep(0.1)
    raise AssertionError(f"no banner: {log.read_text()[-3000:]}")


def test_demo_starts_the_provider_and_both_eservices_then_says_where(tmp_path: Path) -> None:
    port = _three_free_ports()
    # Seeded earlier with other ports: the e-services' registrations follow the new ones.
    assert _idp(tmp_path, "demo", "--no-serve", "--port", str(_three_free_ports())).returncode == 0
    log = tmp_path / "demo.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "idp", "demo", "--port", str(port)],
            cwd=tmp_path,
            env=_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        _wait(f"http://127.0.0.1:{port}/.well-known/openid-configuration", process, log)
        _wait(f"http://127.0.0.1:{port + 1}/", process, log)
        _wait(f"http://127.0.0.1:{port + 2}/jwks.json", process, log)
        printed = _wait_for_banner(log)
        discovery = httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration").json()
        assert discovery["issuer"] == f"http://localhost:{port}"
        banner = printed[printed.index(BANNER) :]
        assert re.search(r"username demo\s+password \S{8,}", banner)
        assert f"Provider          http://localhost:{port}\n" in banner
        assert f"e-licensing       http://localhost:{port + 1} " in banner
        assert f"e-justice         http://localhost:{port + 2} " in banner
        assert f"Your account      http://localhost:{port}/account\n" in banner
        # The banner comes last: every start-up line of the three servers is before it.
        before = printed[: printed.index(BANNER)]
        assert "Application startup complete" in before and "Uvicorn running" in before
        after = [line for line in banner.splitlines() if line.strip() and "[" in line]
        assert all("[idp.http]" in line for line in after), after  # requests only, later
        # e-licensing's sign-in request is one the provider accepts: its redirect URI moved.
        login = httpx.get(f"http://127.0.0.1:{port + 1}/login")
        assert login.status_code in (302, 303)
        authorize = httpx.URL(login.headers["location"]).copy_with(host="127.0.0.1")
        assert httpx.get(authorize).headers["location"].startswith("/login/")
        # The first look at the indicators already shows 90 days of demo data.
        assert "DEMO DATA" in banner and "username demo-admin" in banner
        rows = httpx.get(f"http://127.0.0.1:{port}/stats/kpis.json").json()
        assert len({row["client_id"] for row in rows}) == 5
        latest = max(row["month"] for row in rows if row["complete"])
        last_month = [row for row in rows if row["month"] == latest]
        assert len(last_month) == 5
        assert all(row["sign_ins_completed"] and row["digital_take_up"] for row in last_month)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    assert process.returncode == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    for each in (port, port + 1, port + 2):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{each}/", timeout=2)
    # Everything it made stays in the folder it ran in.
    assert (tmp_path / "data" / "idp.db").exists()
    assert len(list((tmp_path / "keys").glob("*.json"))) == 2


def test_each_eservice_port_can_be_chosen(tmp_path: Path) -> None:
    port, licensing, justice = free_port(), free_port(), free_port()
    done = _idp(
        tmp_path,
        "demo",
        "--no-serve",
        "--port",
        str(port),
        "--elicensing-port",
        str(licensing),
        "--ejustice-port",
        str(justice),
    )
    assert done.returncode == 0, done.stderr
    assert f"e-licensing       http://localhost:{licensing} " in done.stdout
    assert f"e-justice         http://localhost:{justice} " in done.stdout
    shown = _idp(tmp_path, "clients", "show", "e-justice", "--json")
    assert json.loads(shown.stdout)["redirect_uris"] == [f"http://localhost:{justice}/callback"]


def test_a_busy_port_stops_the_demo_with_one_line_naming_it(tmp_path: Path) -> None:
    port = _three_free_ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 2))
        taken.listen()
        refused = _idp(tmp_path, "demo", "--port", str(port))
    assert refused.returncode == 1
    assert refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"error: port {port + 2} (e-justice) is in use")
    assert "--port" in line
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


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
