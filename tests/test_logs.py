"""What a real server's log holds of an unhandled exception: one plain traceback, without any
local variable, header or cookie."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from idp.config import Settings
from idp.runtime import Runtime
from tests.server import ServerProcess, server_env


class FailingServer(ServerProcess):
    """The application of `idp serve` with a route that raises (tests/failing_app.py)."""

    def command(self) -> list[str]:
        return [sys.executable, "-c", f"from tests.failing_app import serve; serve({self.port})"]


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_an_unhandled_exception_is_logged_once_without_locals_headers_or_cookies(
    tmp_path: Path, settings: Settings, runtime: Runtime, log_format: str
) -> None:
    env = server_env(settings, IDP_LOG_FORMAT=log_format)
    server = FailingServer(env, log=tmp_path / "server.log", cwd=Path(__file__).parent.parent)
    server.start()
    hidden: dict[str, Callable[[str], dict[str, str]]] = {
        "cookie": lambda value: {"Cookie": f"idp_session={value}"},
        "header": lambda value: {"X-Api-Key": value},
        "authorization": lambda value: {"Authorization": f"Bearer {value}"},
    }
    values = {name: secrets.token_urlsafe(24) for name in hidden}
    headers: dict[str, str] = {}
    for name, header in hidden.items():
        headers.update(header(values[name]))
    try:
        answer = httpx.get(f"{server.url}/fail", headers=headers)
    finally:
        server.stop()
    assert answer.status_code == 500
    assert answer.json()["error"] == "server_error"

    log = server.log.read_text()
    assert log.count("Traceback (most recent call last)") == 1, log
    assert log.count("RuntimeError: failing on purpose") == 1
    assert [name for name, value in values.items() if value in log] == []
    assert "api_key =" not in log and "'x-api-key'" not in log  # no local variables
