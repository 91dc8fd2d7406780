"""The admin API: admin-scope tokens only, the same actions as the console, its OpenAPI
document committed and served alike, and fuzzed with schemathesis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.admin import openapi
from idp.db.models import Client, Event
from idp.runtime import Runtime
from tests.admin.api_helpers import ApiClient, token
from tests.signin.helpers import add_citizen, add_client

API = "/admin/api/v1"
COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "admin-api.openapi.json"


def test_the_committed_openapi_document_is_the_one_served(client: TestClient) -> None:
    served = client.get(f"{API}/openapi.json")
    assert served.status_code == 200
    assert served.json()["openapi"] == "3.1.0"
    assert COMMITTED.read_text() == openapi.text(), (
        "run `python -m idp.admin.openapi > docs/admin-api.openapi.json`"
    )
    assert json.loads(COMMITTED.read_text()) == served.json()


def test_every_api_route_is_documented(client: TestClient) -> None:
    from starlette.routing import Route

    from idp.app import routes

    routed = {
        (method, route.path[len(API) :])
        for route in routes()
        if isinstance(route, Route) and route.path.startswith(API + "/")
        for method in (route.methods or ()) - {"HEAD"}
    }
    documented = {
        (method.upper(), path)
        for path, item in openapi.document()["paths"].items()
        for method in item
    }
    assert routed - {("GET", "/openapi.json")} == documented


def test_no_token_or_a_citizen_token_is_refused(
    client: TestClient, runtime: Runtime, api: ApiClient
) -> None:
    assert client.get(f"{API}/clients").status_code == 401
    answer = client.get(f"{API}/clients", headers={"Authorization": "Bearer not-a-token"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    # An e-service without the admin scope gets its own token, which is not enough.
    with runtime.db.transaction() as db:
        from idp.services import clients as client_service

        other = client_service.register_client(
            db,
            client_service.NewClient(
                name="Statistics",
                client_id="stats",
                grant_types=["client_credentials"],
                scope="profile",
            ),
            actor="test",
        )
    assert other.client_secret
    plain = token(client, ApiClient("stats", other.client_secret), scope="profile")
    answer = client.get(f"{API}/clients", headers={"Authorization": f"Bearer {plain}"})
    assert answer.status_code == 403
    assert answer.json()["error"] == "insufficient_scope"


def test_the_admin_scope_cannot_be_given_to_a_citizen_facing_e_service(runtime: Runtime) -> None:
    from idp.services import InvalidInput
    from idp.services import clients as client_service

    with pytest.raises(InvalidInput, match="admin scope"), runtime.db.transaction() as db:
        client_service.register_client(
            db,
            client_service.NewClient(
                name="Sneaky",
                redirect_uris=["https://sneaky.example.am/cb"],
                scope="openid admin",
                restricted_scopes=["admin"],
            ),
            actor="test",
        )


def test_register_an_e_service_then_disable_it(
    client: TestClient, runtime: Runtime, bearer: dict[str, str]
) -> None:
    body = {
        "name": "Court records",
        "redirect_uris": ["https://court.example.am/callback"],
        "scope": "openid profile",
        "legal_basis": "Judicial code, article 5.",
        "contacts": ["it@court.example.am"],
    }
    created = client.post(f"{API}/clients", json=body, headers=bearer)
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["client_secret"]
    assert data["legal_basis"] == "Judicial code, article 5."
    shown = client.get(f"{API}/clients/{data['client_id']}", headers=bearer).json()
    assert "client_secret" not in shown
    bad = client.post(
        f"{API}/clients",
        json={**body, "redirect_uris": ["https://court.example.am/cb#x"]},
        headers=bearer,
    )
    assert bad.status_code == 400
    assert "fragment" in bad.json()["error_description"]
    rotated = client.post(f"{API}/clients/{data['client_id']}/rotate-secret", headers=bearer)
    assert rotated.json()["client_secret"] != data["client_secret"]
    disabled = client.post(f"{API}/clients/{data['client_id']}/disable", headers=bearer)
    assert disabled.json()["disabled"] is True
    with runtime.db.read() as db:
        event = db.scalar(select(Event).where(Event.type == "admin.client_disabled"))
        assert event is not None and event.actor == "api:ops-console"
    listing = client.get(f"{API}/clients", params={"q": "court"}, headers=bearer).json()
    assert [c["name"] for c in listing["items"]] == ["Court records"]
    missing = client.get(f"{API}/clients/nope", headers=bearer)
    assert missing.status_code == 404


def test_disabling_the_admin_e_service_stops_its_tokens_at_once(
    client: TestClient, runtime: Runtime, bearer: dict[str, str], api: ApiClient
) -> None:
    assert client.get(f"{API}/keys", headers=bearer).status_code == 200
    answer = client.post(f"{API}/clients/{api.client_id}/disable", headers=bearer)
    assert answer.status_code == 200
    assert client.get(f"{API}/keys", headers=bearer).status_code == 401
    with runtime.db.read() as db:
        row = db.scalar(select(Client).where(Client.client_id == api.client_id))
        assert row is not None and row.disabled


def test_citizens_keys_audit_and_initial_tokens(
    client: TestClient, runtime: Runtime, bearer: dict[str, str]
) -> None:
    add_citizen(runtime, "anahit")
    add_client(runtime)
    found = client.get(f"{API}/citizens", params={"q": "anah"}, headers=bearer).json()
    assert found["total"] == 1
    assert "password_hash" not in json.dumps(found)
    for action in ("unlock", "reset-second-factor", "disable", "enable"):
        answer = client.post(f"{API}/citizens/anahit/{action}", headers=bearer)
        assert answer.status_code == 200, (action, answer.text)
    ended = client.post(f"{API}/citizens/anahit/end-sessions", headers=bearer).json()
    assert ended == {"username": "anahit", "ended": 0}
    keys = client.get(f"{API}/keys", headers=bearer).json()["items"]
    rotated = client.post(f"{API}/keys/rotate", json={"alg": "ES256"}, headers=bearer)
    assert rotated.status_code == 201
    assert rotated.json()["status"] == "next"
    assert len(client.get(f"{API}/keys", headers=bearer).json()["items"]) == len(keys) + 1
    retired = client.post(f"{API}/keys/{rotated.json()['kid']}/retire", json={}, headers=bearer)
    assert retired.status_code == 200, retired.text
    audit = client.get(f"{API}/audit", params={"type": "admin.", "user": "anahit"}, headers=bearer)
    types = [e["type"] for e in audit.json()["items"]]
    assert "admin.user_disabled" in types
    assert client.get(f"{API}/audit/verify", headers=bearer).json()["ok"] is True
    issued = client.post(f"{API}/initial-tokens", json={"uses": 2}, headers=bearer)
    assert issued.status_code == 201
    assert issued.json()["registration_endpoint"].endswith("/register")
    bad = client.get(f"{API}/audit", params={"since": "soon"}, headers=bearer)
    assert bad.status_code == 400


def test_bodies_are_checked(client: TestClient, bearer: dict[str, str]) -> None:
    answer = client.post(f"{API}/keys/rotate", json={"alg": "none"}, headers=bearer)
    assert answer.status_code == 400
    answer = client.post(f"{API}/clients", json={"name": "x", "extra": 1}, headers=bearer)
    assert answer.status_code == 400
    answer = client.post(
        f"{API}/clients",
        content=b"name=x",
        headers={**bearer, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 415
    answer = client.post(f"{API}/clients", json={"name": "a\u0000b"}, headers=bearer)
    assert answer.status_code == 400


# Fuzzing --------------------------------------------------------------------------------------


# Business rules refuse many schema-valid inputs (400): the fuzzing checks that nothing fails and
# that every answer is one the document describes, not that every input is accepted.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.ignored_auth,
]


def test_the_api_never_fails_and_answers_as_documented(
    client: TestClient, runtime: Runtime, bearer: dict[str, str]
) -> None:
    """Every operation with generated input: never a 5xx, every answer as documented."""
    add_citizen(runtime, "anahit")
    add_client(runtime)
    schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in openapi.document()["paths"].values())

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers=bearer, checks=CHECKS)

        fuzz()
