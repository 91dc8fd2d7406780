"""The token endpoint: codes, PKCE, client authentication, refresh rotation, client credentials."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import update
from starlette.testclient import TestClient

from idp.app import create_app
from idp.db.models import AuthorizationCode, TokenGrant, User
from idp.runtime import Runtime
from tests.conftest import make_settings

from .conftest import (
    EService,
    Flow,
    get_code,
    redeem,
    register,
    tokens_for,
)

ISSUER = "http://localhost:8000"


@pytest.fixture
def first_party(runtime: Runtime) -> EService:
    return register(runtime, first_party=True)


def assert_token_error(response: Any, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == error
    description = response.json().get("error_description", "")
    assert not any(ch in description for ch in "\r\n\t")


def userinfo_status(http: TestClient, access_token: str) -> int:
    return http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


# Authorization code ------------------------------------------------------------------------


def test_token_response(client: TestClient, first_party: EService, signed_in: str) -> None:
    flow = Flow.new(first_party)
    response = redeem(client, flow, get_code(client, flow))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "openid profile email"
    assert {"access_token", "refresh_token", "id_token"} <= body.keys()


def test_code_is_single_use_and_reuse_revokes_its_tokens(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    flow = Flow.new(first_party)
    code = get_code(client, flow)
    first = redeem(client, flow, code).json()
    assert userinfo_status(client, first["access_token"]) == 200
    assert_token_error(redeem(client, flow, code), "invalid_grant")
    assert userinfo_status(client, first["access_token"]) == 401
    refreshed = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=first_party.basic(),
    )
    assert_token_error(refreshed, "invalid_grant")


def test_two_simultaneous_redemptions_exactly_one_succeeds(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    for _ in range(3):
        flow = Flow.new(first_party)
        code = get_code(client, flow)
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(redeem, [client] * 2, [flow] * 2, [code] * 2))
        statuses = sorted(r.status_code for r in results)
        assert statuses[0] == 200 and statuses[1] != 200, statuses


def test_expired_code_is_refused(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    assert runtime.settings.authorization_code_lifetime <= 60
    flow = Flow.new(first_party)
    code = get_code(client, flow)
    with runtime.db.transaction() as db:  # the minute passes
        db.execute(
            update(AuthorizationCode).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert_token_error(redeem(client, flow, code), "invalid_grant")


def test_code_is_bound_to_client_and_redirect_uri(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    other = register(runtime, first_party=True)
    flow = Flow.new(first_party)
    code = get_code(client, flow)
    stolen = Flow(other, flow.params, flow.verifier)
    assert_token_error(redeem(client, stolen, code), "invalid_grant")
    flow = Flow.new(first_party)
    code = get_code(client, flow)
    assert_token_error(
        redeem(client, flow, code, redirect_uri="https://eservice.example.am/other"),
        "invalid_grant",
    )


def test_pkce_verifier_is_enforced(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    flow = Flow.new(first_party)
    code = get_code(client, flow)
    wrong = Flow(first_party, flow.params, "x" * 50)
    assert_token_error(redeem(client, wrong, code), "invalid_grant")
    flow = Flow.new(first_party)
    code = get_code(client, flow)
    missing = Flow(first_party, flow.params, "")
    response = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.service.redirect_uri,
        },
        auth=first_party.basic(),
    )
    assert_token_error(response, "invalid_request")
    del missing


def test_pkce_downgrade_is_refused(client: TestClient, runtime: Runtime, signed_in: str) -> None:
    service = register(runtime, first_party=True, require_pkce=False)
    flow = Flow.new(service, code_challenge=None, code_challenge_method=None)
    code = get_code(client, flow)
    assert_token_error(redeem(client, flow, code), "invalid_request")


def test_disabled_citizen_gets_no_tokens(
    client: TestClient, runtime: Runtime, first_party: EService, citizen: User, signed_in: str
) -> None:
    flow = Flow.new(first_party)
    code = get_code(client, flow)
    with runtime.db.transaction() as db:
        db.get(User, citizen.id).disabled_at = datetime.now(UTC)  # type: ignore[union-attr]
    assert_token_error(redeem(client, flow, code), "invalid_grant")


def test_unsupported_grant_type_and_bad_bodies(client: TestClient, service: EService) -> None:
    assert_token_error(
        client.post("/token", data={"grant_type": "password"}, auth=service.basic()),
        "unsupported_grant_type",
    )
    assert_token_error(
        client.post("/token", json={"grant_type": "client_credentials"}, auth=service.basic()),
        "invalid_request",
    )
    assert_token_error(
        client.post(
            "/token",
            content="grant_type=authorization_code&code=a&code=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=service.basic(),
        ),
        "invalid_request",
    )
    assert client.get("/token").status_code == 405


# Client authentication ---------------------------------------------------------------------


def test_wrong_secret_is_invalid_client_with_basic_challenge(
    client: TestClient, service: EService
) -> None:
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(service.client_id, "wrong"),
    )
    assert_token_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic")
    unknown = client.post("/token", data={"grant_type": "client_credentials"}, auth=("nobody", "x"))
    assert_token_error(unknown, "invalid_client", 401)


def test_basic_credentials_are_form_url_decoded(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    service = register(runtime, first_party=True, client_id="tax.service~1")
    flow = Flow.new(service)
    code = get_code(client, flow)
    assert service.secret is not None
    encoded = f"{quote_plus(service.client_id)}:{quote_plus(service.secret)}"
    header = "Basic " + base64.b64encode(encoded.encode()).decode()
    response = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": service.redirect_uri,
            "code_verifier": flow.verifier,
        },
        headers={"Authorization": header},
    )
    assert response.status_code == 200, response.text


def test_client_secret_post(client: TestClient, runtime: Runtime, signed_in: str) -> None:
    service = register(runtime, first_party=True, auth_method="client_secret_post")
    flow = Flow.new(service)
    code = get_code(client, flow)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": service.redirect_uri,
        "code_verifier": flow.verifier,
        "client_id": service.client_id,
        "client_secret": service.secret,
    }
    assert client.post("/token", data=data).status_code == 200
    # The registered method only: the same secret over Basic is refused.
    flow = Flow.new(service)
    response = redeem(client, flow, get_code(client, flow))
    assert_token_error(response, "invalid_client", 401)


def test_two_authentication_methods_at_once_are_refused(
    client: TestClient, service: EService
) -> None:
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "client_secret": service.secret},
        auth=service.basic(),
    )
    assert_token_error(response, "invalid_request")


def test_public_client_with_pkce(client: TestClient, runtime: Runtime, signed_in: str) -> None:
    service = register(
        runtime,
        auth_method="none",
        first_party=True,
        redirect_uris=["http://127.0.0.1/callback"],
    )
    body = tokens_for(client, Flow.new(service))
    assert body["refresh_token"]
    # A public client cannot use client credentials, introspection or revocation.
    response = client.post(
        "/token", data={"grant_type": "client_credentials", "client_id": service.client_id}
    )
    assert_token_error(response, "invalid_client", 401)
    response = client.post(
        "/revoke", data={"token": body["access_token"], "client_id": service.client_id}
    )
    assert_token_error(response, "invalid_client", 401)


def assertion(
    key: Any, client_id: str, *, alg: str = "RS256", aud: str = ISSUER + "/token", **claims: Any
) -> str:
    now = int(time.time())
    values = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode({"alg": alg, "kid": key.kid}, values, key, algorithms=[alg])


def jwt_auth(token: str) -> dict[str, str]:
    return {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
    }


def public_jwks(*keys: Any) -> dict[str, Any]:
    return {"keys": [dict(k.as_dict(private=False), kid=k.kid) for k in keys]}


def test_private_key_jwt_with_registered_jwks(
    client: TestClient, runtime: Runtime, signed_in: str
) -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)
    service = register(
        runtime, first_party=True, auth_method="private_key_jwt", jwks=public_jwks(rsa, ec)
    )
    for key, alg in ((rsa, "RS256"), (ec, "ES256")):
        flow = Flow.new(service)
        code = get_code(client, flow)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": service.redirect_uri,
            "code_verifier": flow.verifier,
            **jwt_auth(assertion(key, service.client_id, alg=alg)),
        }
        assert client.post("/token", data=data).status_code == 200, alg
    cc = {"grant_type": "client_credentials"}
    ok = assertion(rsa, service.client_id, aud=ISSUER)
    service_cc = register(
        runtime,
        auth_method="private_key_jwt",
        jwks=public_jwks(rsa),
        grant_types=["client_credentials"],
        redirect_uris=[],
        scope="profile",
    )
    ok = assertion(rsa, service_cc.client_id, aud=ISSUER)
    assert client.post("/token", data={**cc, **jwt_auth(ok)}).status_code == 200
    # The same jti again: refused.
    assert_token_error(client.post("/token", data={**cc, **jwt_auth(ok)}), "invalid_client", 401)
    bad = [
        assertion(rsa, service_cc.client_id, aud="https://elsewhere.example"),
        assertion(rsa, service_cc.client_id, exp=int(time.time()) - 3600),
        assertion(rsa, service_cc.client_id, jti=None),
        assertion(rsa, service_cc.client_id, iss="someone-else"),
        assertion(
            RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True),
            service_cc.client_id,
        ),
        jwt.encode(
            {"alg": "HS256"},
            {"iss": service_cc.client_id, "sub": service_cc.client_id, "aud": ISSUER},
            __import__("joserfc.jwk", fromlist=["OctKey"]).OctKey.import_key("s" * 32),
            algorithms=["HS256"],
        ),
    ]
    for token in bad:
        assert_token_error(
            client.post("/token", data={**cc, **jwt_auth(token)}), "invalid_client", 401
        )


class JwksServer:
    """An e-service publishing its JWKS over HTTP on the loopback interface."""

    def __init__(self, document: dict[str, Any]) -> None:
        owner = self
        self.document = document
        self.hits = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fetching_client(tmp_path: Path, database_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    settings = make_settings(tmp_path, database_url, client_fetch_private_addresses=True)
    runtime = Runtime.build(settings)
    runtime.keyring.ensure_initial()
    with TestClient(create_app(runtime=runtime), base_url=settings.issuer) as http:
        yield http, runtime
    runtime.db.dispose()


def test_private_key_jwt_with_jwks_uri(fetching_client: tuple[TestClient, Runtime]) -> None:
    http, runtime = fetching_client
    old = RSAKey.generate_key(2048, parameters={"kid": f"old-{uuid.uuid4().hex}"}, private=True)
    new = RSAKey.generate_key(2048, parameters={"kid": f"new-{uuid.uuid4().hex}"}, private=True)
    published = JwksServer(public_jwks(old))
    try:
        service = register(
            runtime,
            auth_method="private_key_jwt",
            jwks_uri=published.url,
            grant_types=["client_credentials"],
            redirect_uris=[],
            scope="profile",
        )
        data = {"grant_type": "client_credentials"}
        token = assertion(old, service.client_id, aud=ISSUER)
        assert http.post("/token", data={**data, **jwt_auth(token)}).status_code == 200
        token = assertion(old, service.client_id, aud=ISSUER)
        assert http.post("/token", data={**data, **jwt_auth(token)}).status_code == 200
        assert published.hits == 1  # cached
    finally:
        published.close()
    del new


def test_jwks_uri_on_a_private_address_is_not_fetched(client: TestClient, runtime: Runtime) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k"}, private=True)
    published = JwksServer(public_jwks(key))
    try:
        service = register(
            runtime,
            auth_method="private_key_jwt",
            jwks_uri=published.url,
            grant_types=["client_credentials"],
            redirect_uris=[],
            scope="profile",
        )
        token = assertion(key, service.client_id, aud=ISSUER)
        response = client.post(
            "/token", data={"grant_type": "client_credentials", **jwt_auth(token)}
        )
        assert_token_error(response, "invalid_client", 401)
        assert published.hits == 0
    finally:
        published.close()


# Refresh tokens ----------------------------------------------------------------------------


def refresh(http: TestClient, service: EService, token: str, **extra: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    return http.post("/token", data=data, auth=service.basic())


def test_refresh_rotates_and_reuse_revokes_the_family(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    first = tokens_for(client, Flow.new(first_party))
    second = refresh(client, first_party, first["refresh_token"])
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert second_body["id_token"]
    third = refresh(client, first_party, second_body["refresh_token"]).json()
    assert userinfo_status(client, third["access_token"]) == 200
    # The first refresh token again: theft. The whole family goes.
    assert_token_error(refresh(client, first_party, first["refresh_token"]), "invalid_grant")
    assert userinfo_status(client, third["access_token"]) == 401
    assert_token_error(refresh(client, first_party, third["refresh_token"]), "invalid_grant")


def test_simultaneous_refreshes_of_one_token_one_wins_and_the_reuse_revokes_the_family(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    """Eight refreshes of one token at once (on PostgreSQL their transactions share the event
    loop): one is answered, the others are reuse, which ends the whole family."""
    first = tokens_for(client, Flow.new(first_party))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda _: refresh(client, first_party, first["refresh_token"]), range(8))
        )
    won = [r for r in results if r.status_code == 200]
    assert len(won) == 1, [r.text for r in results]
    for lost in results:
        if lost is not won[0]:
            assert_token_error(lost, "invalid_grant")
    assert userinfo_status(client, won[0].json()["access_token"]) == 401
    assert_token_error(
        refresh(client, first_party, won[0].json()["refresh_token"]), "invalid_grant"
    )


def test_refresh_may_narrow_but_not_widen_the_scope(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    body = tokens_for(client, Flow.new(first_party))
    narrowed = refresh(client, first_party, body["refresh_token"], scope="openid email")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "openid email"
    widened = refresh(client, first_party, narrowed.json()["refresh_token"], scope="openid phone")
    assert_token_error(widened, "invalid_scope")


def test_refresh_token_is_bound_to_its_client(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    other = register(runtime, first_party=True)
    body = tokens_for(client, Flow.new(first_party))
    assert_token_error(refresh(client, other, body["refresh_token"]), "invalid_grant")


def test_refresh_family_has_an_absolute_lifetime(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    body = tokens_for(client, Flow.new(first_party))
    rotated = refresh(client, first_party, body["refresh_token"]).json()
    with runtime.db.transaction() as db:  # twelve hours pass
        db.execute(update(TokenGrant).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        from idp.db.models import RefreshToken

        db.execute(update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert_token_error(refresh(client, first_party, rotated["refresh_token"]), "invalid_grant")


def test_no_refresh_token_without_the_grant_type(
    client: TestClient, runtime: Runtime, signed_in: str
) -> None:
    service = register(runtime, first_party=True, grant_types=["authorization_code"])
    body = tokens_for(client, Flow.new(service))
    assert "refresh_token" not in body


# Client credentials ------------------------------------------------------------------------


def test_client_credentials_are_scoped(client: TestClient, runtime: Runtime) -> None:
    service = register(
        runtime,
        grant_types=["client_credentials"],
        redirect_uris=[],
        scope="profile email",
    )
    data = {"grant_type": "client_credentials"}
    body = client.post("/token", data=data, auth=service.basic()).json()
    assert body["scope"] == "profile email"
    assert "refresh_token" not in body and "id_token" not in body
    narrow = client.post("/token", data={**data, "scope": "email"}, auth=service.basic())
    assert narrow.json()["scope"] == "email"
    wide = client.post("/token", data={**data, "scope": "phone"}, auth=service.basic())
    assert_token_error(wide, "invalid_scope")
    assert userinfo_status(client, body["access_token"]) == 403


def test_client_credentials_needs_the_grant_type(client: TestClient, service: EService) -> None:
    response = client.post(
        "/token", data={"grant_type": "client_credentials"}, auth=service.basic()
    )
    assert_token_error(response, "unauthorized_client")
