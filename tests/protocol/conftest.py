"""Fixtures for the protocol: e-services, citizens, a signed-in browser, and the code flow."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.requests import Request
from starlette.testclient import TestClient

from idp.auth import sessions
from idp.db.models import User
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import users as user_service

PASSWORD = "ambling-otter-under-ararat"
REDIRECT_URI = "https://eservice.example.am/callback"


@dataclass
class EService:
    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT_URI

    def basic(self) -> tuple[str, str]:
        assert self.secret is not None
        return (self.client_id, self.secret)


def register(runtime: Runtime, **options: Any) -> EService:
    values: dict[str, Any] = {
        "name": "Tax service",
        "redirect_uris": [REDIRECT_URI],
        "scope": "openid profile email phone address offline_access",
    }
    values.update(options)
    with runtime.db.transaction() as db:
        registered = client_service.register_client(
            db, client_service.NewClient(**values), actor="test"
        )
        uris = values["redirect_uris"] or [REDIRECT_URI]
        return EService(registered.client.client_id, registered.client_secret, uris[0])


def make_citizen(runtime: Runtime, username: str = "anahit", **fields: Any) -> User:
    with runtime.db.transaction() as db:
        user = user_service.create_user(
            db,
            runtime.secrets,
            user_service.NewUser(
                username=username,
                password=PASSWORD,
                email=f"{username}@example.am",
                given_name="Anahit",
                family_name="Petrosyan",
                birthdate="1990-04-02",
                phone_number="+37410123456",
            ),
            actor="test",
        )
        for name, value in fields.items():
            setattr(user, name, value)
        return user


def sign_in(
    http: TestClient,
    runtime: Runtime,
    user: User,
    *,
    acr: str = "substantial",
    amr: list[str] | None = None,
    auth_time: datetime | None = None,
) -> str:
    """Give the test browser an SSO session for `user` (our real session code)."""
    request = Request({"type": "http", "headers": [], "client": ("127.0.0.1", 50000)})
    with runtime.db.transaction() as db:
        sso, value = sessions.create_session(
            db,
            user=db.get(User, user.id),  # type: ignore[arg-type]
            acr=acr,
            amr=amr or ["pwd", "otp", "mfa"],
            auth_time=auth_time or datetime.now(UTC),
            request=request,
            settings=runtime.settings,
        )
        sid = sso.sid
    http.cookies.set(sessions.cookie_name(runtime.settings), value)
    return sid


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


@dataclass
class Flow:
    """One authorization request of an e-service, with its PKCE verifier."""

    service: EService
    params: dict[str, str] = field(default_factory=dict)
    verifier: str = ""

    @classmethod
    def new(cls, service: EService, **params: str) -> Flow:
        verifier, challenge = pkce()
        values = {
            "response_type": "code",
            "client_id": service.client_id,
            "redirect_uri": service.redirect_uri,
            "scope": "openid profile email",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        values.update(params)
        return cls(service, {k: v for k, v in values.items() if v is not None}, verifier)


def redirect_params(response: Any) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    return {k: v[0] for k, v in query.items()}


def authorize(http: TestClient, flow: Flow) -> Any:
    return http.get("/authorize", params=flow.params, follow_redirects=False)


def get_code(http: TestClient, flow: Flow) -> str:
    response = authorize(http, flow)
    params = redirect_params(response)
    assert response.headers["location"].startswith(flow.service.redirect_uri)
    assert "code" in params, params
    assert params["state"] == flow.params["state"]
    return params["code"]


def redeem(http: TestClient, flow: Flow, code: str, **extra: str) -> Any:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": flow.service.redirect_uri,
        "code_verifier": flow.verifier,
        **extra,
    }
    if flow.service.secret is None:
        data.setdefault("client_id", flow.service.client_id)
        return http.post("/token", data=data)
    return http.post("/token", data=data, auth=flow.service.basic())


def tokens_for(http: TestClient, flow: Flow) -> dict[str, Any]:
    response = redeem(http, flow, get_code(http, flow))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def verify_jwt(http: TestClient, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(http.get("/jwks").json())
    decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256", "PS256", "EdDSA"])
    return {"header": decoded.header, **decoded.claims}


@pytest.fixture
def service(runtime: Runtime) -> EService:
    return register(runtime)


@pytest.fixture
def citizen(runtime: Runtime) -> User:
    return make_citizen(
        runtime,
        address={"country": "AM", "locality": "Yerevan"},
        public_service_number="1234567890",
        identity_document_number="AN0123456",
        gender="female",
        birthdate=date(1990, 4, 2),
    )


@pytest.fixture
def signed_in(client: TestClient, runtime: Runtime, citizen: User) -> str:
    return sign_in(client, runtime, citizen)
