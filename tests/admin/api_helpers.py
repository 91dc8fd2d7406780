"""An e-service allowed the admin scope, and its access token (client credentials); an initial
access token for dynamic registration."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.testclient import TestClient

from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import registration as registration_service


@dataclass
class ApiClient:
    client_id: str
    secret: str


def admin_client(runtime: Runtime, client_id: str = "ops-console") -> ApiClient:
    with runtime.db.transaction() as db:
        registered = client_service.register_client(
            db,
            client_service.NewClient(
                name="Operations",
                client_id=client_id,
                grant_types=["client_credentials"],
                scope="admin",
                restricted_scopes=["admin"],
            ),
            actor="test",
        )
    assert registered.client_secret
    return ApiClient(client_id, registered.client_secret)


def token(http: TestClient, api: ApiClient, scope: str = "admin") -> str:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(api.client_id, api.secret),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def initial_token(runtime: Runtime, uses: int = 1) -> str:
    with runtime.db.transaction() as db:
        return registration_service.issue_initial_token(
            db, uses=uses, expires_in=600, actor="test"
        ).token
