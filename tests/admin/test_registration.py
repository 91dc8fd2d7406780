"""Dynamic client registration (RFC 7591) and management (RFC 7592), gated by initial access
tokens that administrators issue."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.cli import main
from idp.config import Settings
from idp.db.models import Client, Event
from idp.runtime import Runtime
from idp.security import hash_secret
from tests.admin.api_helpers import initial_token

METADATA = {
    "client_name": "Ministry of Culture",
    "redirect_uris": ["https://culture.example.am/callback"],
    "post_logout_redirect_uris": ["https://culture.example.am/"],
    "token_endpoint_auth_method": "client_secret_basic",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "scope": "openid profile email",
    "contacts": ["it@culture.example.am"],
    "logo_uri": "https://culture.example.am/logo.png",
}


def register(http: TestClient, token: str | None, body: dict[str, object]) -> object:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.post("/register", json=body, headers=headers)


def test_discovery_advertises_the_registration_endpoint(client: TestClient) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["registration_endpoint"] == "http://localhost:8000/register"


def test_registration_needs_a_valid_initial_token(client: TestClient, runtime: Runtime) -> None:
    answer = register(client, None, METADATA)
    assert answer.status_code == 401  # type: ignore[attr-defined]
    assert answer.json()["error"] == "invalid_token"  # type: ignore[attr-defined]
    answer = register(client, "made-up-token", METADATA)
    assert answer.status_code == 401  # type: ignore[attr-defined]
    with runtime.db.read() as db:
        assert db.scalar(select(Client)) is None


def test_a_single_use_token_registers_one_e_service(client: TestClient, runtime: Runtime) -> None:
    token = initial_token(runtime)
    answer = register(client, token, METADATA)
    assert answer.status_code == 201, answer.text  # type: ignore[attr-defined]
    data = answer.json()  # type: ignore[attr-defined]
    assert data["client_name"] == "Ministry of Culture"
    assert data["client_secret"] and data["registration_access_token"]
    assert data["client_secret_expires_at"] == 0
    assert data["registration_client_uri"].endswith(f"/register/{data['client_id']}")
    with runtime.db.read() as db:
        row = db.scalar(select(Client).where(Client.client_id == data["client_id"]))
        assert row is not None
        assert row.secret_hash == hash_secret(data["client_secret"])
        assert row.registration_token_hash == hash_secret(data["registration_access_token"])
        assert not row.first_party
        event = db.scalar(select(Event).where(Event.type == "admin.client_registered"))
        assert event is not None and event.actor.startswith("dcr:")
    again = register(client, token, {**METADATA, "client_name": "Second"})
    assert again.status_code == 401  # type: ignore[attr-defined]


def test_a_refused_registration_spends_a_use(client: TestClient, runtime: Runtime) -> None:
    token = initial_token(runtime, uses=9)
    for uri, error in [
        ("http://culture.example.am/callback", "invalid_redirect_uri"),
        ("https://culture.example.am/cb#fragment", "invalid_redirect_uri"),
        ("javascript:alert(1)", "invalid_redirect_uri"),
    ]:
        answer = register(client, token, {**METADATA, "redirect_uris": [uri]})
        assert answer.status_code == 400  # type: ignore[attr-defined]
        assert answer.json()["error"] == error  # type: ignore[attr-defined]
    for bad in [
        {"scope": "openid national_id"},
        {"scope": "admin", "grant_types": ["client_credentials"], "redirect_uris": []},
        {"client_name": ""},
        {"response_types": ["token"]},
        {"redirect_uris": "https://culture.example.am/callback"},
    ]:
        answer = register(client, token, {**METADATA, **bad})
        assert answer.status_code == 400, bad  # type: ignore[attr-defined]
        assert answer.json()["error"] == "invalid_client_metadata"  # type: ignore[attr-defined]
    assert register(client, token, METADATA).status_code == 201  # type: ignore[attr-defined]
    # Eight refusals and one registration: the token is used up.
    assert register(client, token, METADATA).status_code == 401  # type: ignore[attr-defined]


def test_the_registration_can_be_read_updated_and_deleted(
    client: TestClient, runtime: Runtime
) -> None:
    data = register(client, initial_token(runtime), METADATA).json()  # type: ignore[attr-defined]
    uri = f"/register/{data['client_id']}"
    auth = {"Authorization": f"Bearer {data['registration_access_token']}"}
    assert client.get(uri).status_code == 401
    assert client.get(uri, headers={"Authorization": "Bearer wrong"}).status_code == 401
    read = client.get(uri, headers=auth)
    assert read.status_code == 200
    assert "client_secret" not in read.json()
    updated = client.put(
        uri,
        json={**METADATA, "client_id": data["client_id"], "client_name": "Culture online"},
        headers=auth,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["client_name"] == "Culture online"
    refused = client.put(
        uri, json={**METADATA, "redirect_uris": ["http://evil.example/cb"]}, headers=auth
    )
    assert refused.status_code == 400
    assert client.delete(uri, headers=auth).status_code == 204
    assert client.get(uri, headers=auth).status_code == 401
    with runtime.db.read() as db:
        row = db.scalar(select(Client).where(Client.client_id == data["client_id"]))
        assert row is not None and row.disabled and row.name == "Culture online"


def test_initial_token_command(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, client: TestClient
) -> None:
    assert main(["clients", "initial-token", "--uses", "2", "--expires-in", "3600", "--json"]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert issued["uses"] == 2
    token = issued["initial_access_token"]
    first = register(client, token, METADATA)
    second = register(client, token, {**METADATA, "client_name": "Another"})
    third = register(client, token, {**METADATA, "client_name": "Third"})
    assert [r.status_code for r in (first, second, third)] == [201, 201, 401]  # type: ignore[attr-defined]
    assert main(["clients", "initial-token", "--uses", "0"]) == 2


def test_an_update_to_a_secret_based_method_answers_the_new_secret(
    client: TestClient, runtime: Runtime
) -> None:
    """RFC 7592 §2.2: the e-service gets its secret in the answer to its PUT; moving away from
    a secret removes it; what an administrator set stays as they set it."""
    public = {**METADATA, "token_endpoint_auth_method": "none"}
    data = register(client, initial_token(runtime), public).json()  # type: ignore[attr-defined]
    assert "client_secret" not in data
    with runtime.db.transaction() as db:
        from idp.services import clients as client_service

        client_service.update_client(
            db,
            data["client_id"],
            client_service.ClientChanges({"legal_basis": "Culture law, article 3."}),
            actor="test",
        )
    uri = f"/register/{data['client_id']}"
    auth = {"Authorization": f"Bearer {data['registration_access_token']}"}
    updated = client.put(uri, json=METADATA, headers=auth)
    assert updated.status_code == 200, updated.text
    secret = updated.json()["client_secret"]
    answer = client.post("/introspect", data={"token": "x"}, auth=(data["client_id"], secret))
    assert answer.status_code == 200 and answer.json() == {"active": False}  # authenticated
    again = client.put(uri, json=public, headers=auth)
    assert again.status_code == 200 and "client_secret" not in again.json()
    with runtime.db.read() as db:
        row = db.scalar(select(Client).where(Client.client_id == data["client_id"]))
        assert row is not None and row.secret_hash is None
        assert row.legal_basis == "Culture law, article 3."
        changes = [
            e.data["changes"]
            for e in db.scalars(select(Event).where(Event.type == "admin.client_updated"))
        ]
    assert [c.get("auth_method", {}).get("after") for c in changes[1:]] == [
        "client_secret_basic",
        "none",
    ]
