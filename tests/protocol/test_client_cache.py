"""E-service settings are cached per process, and a change made in the process is seen at once
(`idp/oauth/client_cache.py`); other processes see it within `client_cache_seconds`."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from idp.cli import main
from idp.config import Settings
from idp.runtime import Runtime
from idp.services import clients as client_service
from tests.protocol.conftest import EService, register

CC = {"grant_type": "client_credentials"}


@pytest.fixture
def service(runtime: Runtime) -> EService:
    return register(runtime, redirect_uris=[], grant_types=["client_credentials"], scope="profile")


def test_a_rotated_secret_stops_working_at_once(
    client: TestClient, runtime: Runtime, service: EService
) -> None:
    assert client.post("/token", data=CC, auth=service.basic()).status_code == 200
    with runtime.db.transaction() as db:
        new = client_service.rotate_secret(db, service.client_id, actor="test").client_secret
    assert client.post("/token", data=CC, auth=service.basic()).status_code == 401
    assert new is not None
    assert client.post("/token", data=CC, auth=(service.client_id, new)).status_code == 200


def test_an_eservice_disabled_from_the_command_line_is_refused_at_once(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, client: TestClient, service: EService
) -> None:
    assert client.post("/token", data=CC, auth=service.basic()).status_code == 200
    assert main(["clients", "disable", service.client_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["disabled"] is True
    refused = client.post("/token", data=CC, auth=service.basic())
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert main(["clients", "enable", service.client_id]) == 0
    assert client.post("/token", data=CC, auth=service.basic()).status_code == 200
