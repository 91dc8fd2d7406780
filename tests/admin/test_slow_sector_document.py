"""A sector identifier URI is fetched before the registration's transaction, whichever way the
e-service is registered: while its host is slow, the provider keeps serving sign-ins (on
SQLite a transaction holding the write lock made every `/authorize` fail with 503)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from idp.cli import main
from idp.config import Settings
from idp.db.models import Client
from idp.runtime import Runtime
from idp.services import registration as registration_service
from tests.admin.api_helpers import admin_client, token
from tests.admin.conftest import Console
from tests.admin.test_pages import console_token
from tests.conftest import make_settings
from tests.hosts import Documents
from tests.protocol.conftest import Flow, register
from tests.protocol.test_sector_identifier import CUSTOMS, TAX, clients_create
from tests.signin.helpers import Citizen


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Documents on this machine may be fetched, and a fetch may last longer than SQLite waits
    for a lock (5 s), as a slow host's can."""
    return make_settings(
        tmp_path, database_url, client_fetch_private_addresses=True, client_fetch_timeout=15
    )


@pytest.fixture
def documents() -> Iterator[Documents]:
    server = Documents()
    yield server
    server.close()


Register = Callable[[str], bool]  # registers an e-service with this sector URI: accepted?


def by_dynamic_registration(client: TestClient, runtime: Runtime) -> Register:
    with runtime.db.transaction() as db:
        initial = registration_service.issue_initial_token(
            db, uses=1, expires_in=600, actor="test"
        ).token

    def run(sector: str) -> bool:
        answer = client.post(
            "/register",
            json={
                "client_name": "Revenue",
                "redirect_uris": [TAX, CUSTOMS],
                "subject_type": "pairwise",
                "sector_identifier_uri": sector,
            },
            headers={"Authorization": f"Bearer {initial}"},
        )
        return answer.status_code == 201

    return run


def by_console(console: Console, admin: Citizen) -> Register:
    assert console.open(admin, "/admin/clients/new").status_code == 200

    def run(sector: str) -> bool:
        sent = console.client.post(
            "/admin/clients/new",
            data={
                "name": "Revenue",
                "redirect_uris": f"{TAX}\n{CUSTOMS}",
                "auth_method": "client_secret_basic",
                "grant_types": "authorization_code",
                "scopes": "openid",
                "subject_type": "pairwise",
                "sector_identifier_uri": sector,
                "access_token_format": "opaque",
                "csrf_token": console_token(console),
            },
            follow_redirects=False,
        )
        return sent.status_code == 200 and "secret" in sent.text

    return run


def by_admin_api(client: TestClient, runtime: Runtime) -> Register:
    bearer = {"Authorization": f"Bearer {token(client, admin_client(runtime))}"}

    def run(sector: str) -> bool:
        created = client.post(
            "/admin/api/v1/clients",
            json={
                "name": "Revenue",
                "redirect_uris": [TAX, CUSTOMS],
                "subject_type": "pairwise",
                "sector_identifier_uri": sector,
            },
            headers=bearer,
        )
        return created.status_code == 201

    return run


def by_command_line(monkeypatch: pytest.MonkeyPatch) -> Register:
    monkeypatch.setenv("IDP_CLIENT_FETCH_PRIVATE_ADDRESSES", "true")
    monkeypatch.setenv("IDP_CLIENT_FETCH_TIMEOUT", "15")

    def run(sector: str) -> bool:
        return main(clients_create("--sector-identifier-uri", sector)) == 0

    return run


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize("way", ["dynamic registration", "console", "admin API", "command line"])
def test_sign_ins_go_on_while_a_sector_document_is_slow(
    client: TestClient,
    runtime: Runtime,
    documents: Documents,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    way: str,
) -> None:
    ways: dict[str, Callable[[], Register]] = {
        "dynamic registration": lambda: by_dynamic_registration(client, runtime),
        "console": lambda: by_console(
            request.getfixturevalue("console"), request.getfixturevalue("admin")
        ),
        "admin API": lambda: by_admin_api(client, runtime),
        "command line": lambda: by_command_line(monkeypatch),
    }
    registration = ways[way]()
    service = register(runtime, name="Post office")
    release = documents.hold("/sector.json", [TAX, CUSTOMS])
    outcome: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: outcome.update(accepted=registration(documents.url("/sector.json")))
    )
    worker.start()
    try:
        assert documents.waiting.wait(30)  # the provider is fetching the sector document
        browser = TestClient(client.app, base_url=runtime.settings.issuer)
        for _ in range(3):
            sign_in = browser.get(
                "/authorize", params=Flow.new(service).params, follow_redirects=False
            )
            assert sign_in.status_code == 303, sign_in.text
            assert sign_in.headers["location"].startswith("/login/")
        assert worker.is_alive()  # the registration still waits for the host
    finally:
        release.set()
        worker.join(30)
    assert outcome["accepted"] is True
    with runtime.db.read() as db:
        registered = db.scalar(select(func.count()).where(Client.name == "Revenue"))
        assert registered == 1
