"""The benchmark's scripts load and parse (they are run by hand, never timed in tests)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize(
    "module", ["bench.runner", "bench.seed", "bench.fixtures", "bench.signin", "bench.indicators"]
)
def test_bench_modules_import(module: str) -> None:
    importlib.import_module(module)


def test_runner_options_parse() -> None:
    from bench.runner import parse

    args = parse(["--no-scale", "--no-peer", "--duration", "3"])
    assert (args.citizens, args.tokens, args.duration, args.workers) == (0, 0, 3, 1)


def test_runner_refuses_a_remote_database() -> None:
    from bench.runner import parse

    with pytest.raises(SystemExit):
        parse(["--postgres", "postgresql://postgres@db.example:5432"])


@pytest.mark.parametrize("script", sorted(p.name for p in (BENCH / "wrk").glob("*.lua")))
def test_wrk_scripts_load(script: str, tmp_path: Path) -> None:
    """wrk compiles the script before connecting: a syntax error is reported, nothing is sent
    (port 9 on 127.0.0.1 is closed)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        reason = "wrk is not installed (apt-get install -y wrk)"
        if os.environ.get("IDP_TEST_REQUIRE_WRK") == "1":  # CI: fail, never skip
            pytest.fail(f"{reason}; IDP_TEST_REQUIRE_WRK=1", pytrace=False)
        pytest.skip(reason)
    env = {"BENCH_LUA_DIR": str(BENCH / "wrk"), "BENCH_IN": "/dev/null", "BENCH_THREADS": "1"}
    done = subprocess.run(
        [wrk, "-t1", "-c1", "-d1s", "-s", str(BENCH / "wrk" / script), "http://127.0.0.1:9/"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    output = done.stdout + done.stderr
    assert "unable to connect" in output
    assert ".lua:" not in output, output
