"""Sector identifier URIs (OIDC Core §8.1, Dynamic Registration §5): fetched at registration
and on every change of the redirect URIs, each one must be listed; the sector's e-services
then know a citizen by the same pairwise `sub`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from idp.background import run_now
from idp.cli import main
from idp.config import Settings
from idp.db.models import Client, InitialAccessToken, User
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import registration as registration_service
from tests.conftest import make_settings
from tests.hosts import Documents
from tests.server import free_port

from .conftest import EService, Flow, tokens_for, verify_jwt

TAX = "https://tax.example.am/callback"
CUSTOMS = "https://customs.example.am/callback"
LAND = "https://land.example.am/callback"


@pytest.fixture
def documents() -> Iterator[Documents]:
    server = Documents()
    server.publish("/sector.json", [TAX, CUSTOMS])
    server.publish("/incomplete.json", [TAX])
    server.publish("/object.json", {"redirect_uris": [TAX, CUSTOMS]})
    server.publish("/numbers.json", [1, 2])
    server.bodies["/not-json"] = b"<html>a page</html>"
    server.redirects["/moved"] = "/sector.json"
    yield server
    server.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The provider may fetch from this machine (the documents are served on loopback)."""
    return make_settings(tmp_path, database_url, client_fetch_private_addresses=True)


def clients_create(*args: str) -> list[str]:
    return [
        "clients",
        "create",
        "--name",
        "Revenue",
        "--redirect-uri",
        TAX,
        "--redirect-uri",
        CUSTOMS,
        "--subject-type",
        "pairwise",
        *args,
    ]


def client_count(runtime: Runtime) -> int:
    with runtime.db.read() as db:
        return int(db.scalar(select(func.count()).select_from(Client)) or 0)


# On the command line ---------------------------------------------------------------------------


@pytest.mark.usefixtures("cli_env")
def test_cli_registers_an_e_service_whose_sector_lists_its_redirect_uris(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    documents: Documents,
) -> None:
    monkeypatch.setenv("IDP_CLIENT_FETCH_PRIVATE_ADDRESSES", "true")
    sector = documents.url("/sector.json")
    code = main(clients_create("--sector-identifier-uri", sector, "--json"))
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["sector_identifier_uri"] == sector
    assert data["redirect_uris"] == [TAX, CUSTOMS]
    assert documents.hits["/sector.json"] == 1


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (
            "/incomplete.json",
            "sector identifier URI '{url}' does not list redirect URI '" + CUSTOMS + "'",
        ),
        ("/object.json", "sector identifier URI '{url}' is not a JSON array of URIs"),
        ("/numbers.json", "sector identifier URI '{url}' is not a JSON array of URIs"),
        ("/not-json", "sector identifier URI could not be fetched: {url} is not JSON"),
        ("/missing.json", "sector identifier URI could not be fetched: {url} answered 404"),
        ("/moved", "sector identifier URI could not be fetched: {url} answered 302"),
    ],
)
def test_cli_refuses_a_sector_document_that_does_not_vouch_for_the_redirect_uris(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    runtime: Runtime,
    documents: Documents,
    path: str,
    reason: str,
) -> None:
    monkeypatch.setenv("IDP_CLIENT_FETCH_PRIVATE_ADDRESSES", "true")
    url = documents.url(path)
    code = main(clients_create("--sector-identifier-uri", url))
    _, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [f"error: {reason.format(url=url)}"]
    assert client_count(runtime) == 0
    assert "/sector.json" not in documents.hits  # a redirect is not followed


@pytest.mark.usefixtures("cli_env")
def test_cli_refuses_an_unreachable_sector_document(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, runtime: Runtime
) -> None:
    monkeypatch.setenv("IDP_CLIENT_FETCH_PRIVATE_ADDRESSES", "true")
    url = f"http://127.0.0.1:{free_port()}/sector.json"  # nothing listens there
    code = main(clients_create("--sector-identifier-uri", url))
    _, err = capsys.readouterr()
    assert code == 1
    assert (
        err.strip()
        == f"error: sector identifier URI could not be fetched: {url} could not be fetched"
    )
    assert client_count(runtime) == 0


@pytest.mark.usefixtures("cli_env")
def test_cli_in_production_fetches_only_public_https_addresses(
    capsys: pytest.CaptureFixture[str], runtime: Runtime, documents: Documents
) -> None:
    # Without IDP_CLIENT_FETCH_PRIVATE_ADDRESSES, as in production.
    plain = documents.url("/sector.json")
    code = main(clients_create("--sector-identifier-uri", plain))
    assert code == 1
    assert f"sector identifier URI must use https: '{plain}'" in capsys.readouterr().err
    internal = f"https://127.0.0.1:{documents.port}/sector.json"
    code = main(clients_create("--sector-identifier-uri", internal))
    assert code == 1
    assert capsys.readouterr().err == (
        f"error: sector identifier URI could not be fetched: {internal} cannot be used\n"
    )
    assert not documents.hits
    assert client_count(runtime) == 0


# By dynamic registration --------------------------------------------------------------------


def initial_token(runtime: Runtime, uses: int = 1) -> str:
    with runtime.db.transaction() as db:
        return registration_service.issue_initial_token(
            db, uses=uses, expires_in=600, actor="test"
        ).token


def metadata(sector: str, *redirect_uris: str) -> dict[str, Any]:
    return {
        "client_name": "Revenue committee",
        "redirect_uris": list(redirect_uris or (TAX, CUSTOMS)),
        "subject_type": "pairwise",
        "sector_identifier_uri": sector,
        "scope": "openid profile",
    }


def test_dynamic_registration_checks_the_sector_document(
    client: TestClient, runtime: Runtime, documents: Documents
) -> None:
    token = initial_token(runtime, uses=5)
    bearer = {"Authorization": f"Bearer {token}"}
    for path, error in [
        ("/incomplete.json", "invalid_redirect_uri"),
        ("/object.json", "invalid_client_metadata"),
        ("/not-json", "invalid_client_metadata"),
        ("/moved", "invalid_client_metadata"),
    ]:
        refused = client.post("/register", json=metadata(documents.url(path)), headers=bearer)
        assert refused.status_code == 400, path
        assert refused.json()["error"] == error, path
        assert "sector identifier URI" in refused.json()["error_description"]
    assert client_count(runtime) == 0
    sector = documents.url("/sector.json")
    answer = client.post("/register", json=metadata(sector), headers=bearer)
    assert answer.status_code == 201, answer.text
    assert answer.json()["sector_identifier_uri"] == sector


def test_a_refused_registration_spends_a_use_of_the_initial_token(
    client: TestClient, runtime: Runtime, documents: Documents
) -> None:
    """Else one token could make the provider fetch a refused document again and again."""
    token = initial_token(runtime, uses=2)
    bearer = {"Authorization": f"Bearer {token}"}
    refused = metadata(documents.url("/incomplete.json"))
    for _ in range(2):
        assert client.post("/register", json=refused, headers=bearer).status_code == 400
    with runtime.db.read() as db:
        assert db.scalar(select(InitialAccessToken.uses_left)) == 0
    used_up = client.post("/register", json=refused, headers=bearer)
    assert used_up.status_code == 401
    assert used_up.json()["error"] == "invalid_token"
    assert documents.hits["/incomplete.json"] == 2  # the third attempt fetched nothing
    assert client_count(runtime) == 0


def test_a_registration_update_is_checked_again_when_the_redirect_uris_change(
    client: TestClient, runtime: Runtime, documents: Documents
) -> None:
    sector = documents.url("/sector.json")
    token = initial_token(runtime)
    created = client.post(
        "/register", json=metadata(sector), headers={"Authorization": f"Bearer {token}"}
    ).json()
    manage = {"Authorization": f"Bearer {created['registration_access_token']}"}
    where = f"/register/{created['client_id']}"
    assert documents.hits["/sector.json"] == 1
    # The same redirect URIs: the document is not fetched again.
    same = client.put(where, json={**metadata(sector), "client_name": "Revenue"}, headers=manage)
    assert same.status_code == 200, same.text
    assert documents.hits["/sector.json"] == 1
    # A redirect URI the sector does not list is refused; nothing changes.
    added = metadata(sector, TAX, CUSTOMS, LAND)
    refused = client.put(where, json=added, headers=manage)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_redirect_uri"
    assert LAND in refused.json()["error_description"]
    assert client.get(where, headers=manage).json()["redirect_uris"] == [TAX, CUSTOMS]
    # Once the sector lists it, the same change is accepted.
    documents.publish("/sector.json", [TAX, CUSTOMS, LAND])
    accepted = client.put(where, json=added, headers=manage)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["redirect_uris"] == [TAX, CUSTOMS, LAND]
    # Moving to another sector document is checked too.
    moved = client.put(where, json=metadata(documents.url("/incomplete.json")), headers=manage)
    assert moved.status_code == 400


# The e-services of a sector share the pairwise subject ---------------------------------------


def pairwise(runtime: Runtime, redirect_uri: str, sector: str | None) -> EService:
    new = client_service.NewClient(
        name=f"Service at {redirect_uri}",
        redirect_uris=[redirect_uri],
        scope="openid profile email",
        subject_type="pairwise",
        sector_identifier_uri=sector,
        first_party=True,
    )
    checked = run_now(client_service.check_client(new, runtime.settings))
    with runtime.db.transaction() as db:
        registered = client_service.register_client(db, checked, actor="test")
        return EService(registered.client.client_id, registered.client_secret, redirect_uri)


def test_e_services_of_one_sector_know_the_citizen_by_the_same_pairwise_sub(
    client: TestClient, runtime: Runtime, documents: Documents, citizen: User, signed_in: str
) -> None:
    sector = documents.url("/sector.json")
    tax = pairwise(runtime, TAX, sector)
    customs = pairwise(runtime, CUSTOMS, sector)
    land = pairwise(runtime, LAND, None)  # its own sector: land.example.am
    subs = [
        verify_jwt(client, tokens_for(client, Flow.new(s))["id_token"])["sub"]
        for s in (tax, customs, land)
    ]
    assert subs[0] == subs[1]
    assert subs[2] != subs[0]
    assert citizen.sub not in subs


def test_several_hosts_need_a_sector_that_lists_them(
    runtime: Runtime, documents: Documents
) -> None:
    from idp.services import InvalidInput

    new = client_service.NewClient(
        name="Revenue", redirect_uris=[TAX, CUSTOMS], subject_type="pairwise"
    )
    with runtime.db.transaction() as db, pytest.raises(InvalidInput, match="several hosts"):
        client_service.register_client(db, new, actor="test")
    checked = run_now(
        client_service.check_client(
            client_service.NewClient(
                name="Revenue",
                redirect_uris=[TAX, CUSTOMS],
                subject_type="pairwise",
                sector_identifier_uri=documents.url("/sector.json"),
            ),
            runtime.settings,
        )
    )
    with runtime.db.transaction() as db:
        registered = client_service.register_client(db, checked, actor="test")
        assert registered.client.sector_identifier_uri == documents.url("/sector.json")
