"""`make run` (`idp demo`) on a fresh folder: the provider and both e-services answer, with the
demo credentials printed, and Ctrl-C stops all three."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

PORTS = (8000, 8001, 8002)


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
        assert re.search(r"Your account\s+http://localhost:8000/account\n", printed)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    for port in PORTS:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    # Everything it made stays in the folder it ran in.
    assert (tmp_path / "data" / "idp.db").exists()
    assert len(list((tmp_path / "keys").glob("*.json"))) == 2
