"""A crowd signing in at once on a real `idp serve`: an office, a demo for a ministry, a pilot.

200 citizens each make a complete sign-in (authorize → password → one-time code → the
e-service's token request → userinfo), 40 at a time, on the embedded default (SQLite) and on
PostgreSQL. Nobody sees an error, everybody gets in, and nobody gets in as someone else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.burst import run_burst
from idp.config import Settings
from tests.server import ServerProcess, server_env

REPO = Path(__file__).resolve().parents[2]
CITIZENS = 200
AT_ONCE = 40


def test_forty_at_once_all_sign_in_without_an_error(tmp_path: Path, settings: Settings) -> None:
    env = server_env(settings)
    fixtures = tmp_path / "fixtures.json"
    subprocess.run(
        [sys.executable, "-m", "bench.fixtures", str(CITIZENS), str(fixtures)],
        env={**os.environ, **env},
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    setup = json.loads(fixtures.read_text())
    server = ServerProcess(env, log=tmp_path / "server.log")
    server.start()
    try:
        outcome = run_burst(server.url, setup, setup["users"], AT_ONCE)
    finally:
        server.stop()
    assert dict(outcome.server_errors) == {}, outcome.errors[:5]
    assert outcome.mixups == 0, outcome.errors[:5]
    assert outcome.failed == 0, outcome.errors[:5]
    assert outcome.completed == CITIZENS
    assert "database is locked" not in (tmp_path / "server.log").read_text()
