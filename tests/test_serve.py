"""The real server: `idp serve` answers, and a kill -9 loses nothing."""

from __future__ import annotations

from pathlib import Path

import httpx

from idp.cli import main
from idp.config import Settings
from tests.server import ServerProcess, server_env


def test_serve_survives_kill_9_without_losing_keys_or_clients(
    tmp_path: Path, settings: Settings, cli_env: Settings
) -> None:
    server = ServerProcess(server_env(settings), log=tmp_path / "server.log")
    server.start()
    try:
        discovery = httpx.get(f"{server.url}/.well-known/openid-configuration").json()
        assert discovery["issuer"] == "http://localhost:8000"
        jwks_before = httpx.get(f"{server.url}/jwks").json()
        assert httpx.get(f"{server.url}/health/ready").status_code == 200
        assert (
            main(
                [
                    "clients",
                    "create",
                    "--name",
                    "Tax",
                    "--client-id",
                    "tax",
                    "--redirect-uri",
                    "https://tax.example.am/cb",
                ]
            )
            == 0
        )

        server.kill()
        server.start()
        assert httpx.get(f"{server.url}/jwks").json() == jwks_before
        assert main(["clients", "show", "tax"]) == 0
    finally:
        server.stop()
    assert "unsafe development default" in (tmp_path / "server.log").read_text()
