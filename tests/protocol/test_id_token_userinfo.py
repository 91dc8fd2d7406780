"""ID tokens, subjects, the claims model, userinfo, introspection, revocation, discovery."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import event
from starlette.testclient import TestClient

from idp.db.models import User
from idp.runtime import Runtime

from .conftest import EService, Flow, register, tokens_for, verify_jwt

ISSUER = "http://localhost:8000"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def at_hash(token: str, digest: Any = hashlib.sha256) -> str:
    value = digest(token.encode()).digest()
    return base64.urlsafe_b64encode(value[: len(value) // 2]).rstrip(b"=").decode()


@pytest.fixture
def first_party(runtime: Runtime) -> EService:
    return register(runtime, first_party=True)


def test_id_token_claims(
    client: TestClient, runtime: Runtime, first_party: EService, citizen: User, signed_in: str
) -> None:
    flow = Flow.new(first_party)
    body = tokens_for(client, flow)
    claims = verify_jwt(client, body["id_token"])
    assert claims["header"]["alg"] == "RS256"
    assert claims["header"]["kid"] in {k["kid"] for k in client.get("/jwks").json()["keys"]}
    assert claims["iss"] == ISSUER
    assert claims["sub"] == citizen.sub
    assert claims["aud"] == first_party.client_id
    assert claims["azp"] == first_party.client_id
    assert claims["nonce"] == flow.params["nonce"]
    assert claims["acr"] == "substantial"
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["sid"] == signed_in
    assert claims["at_hash"] == at_hash(body["access_token"])
    now = datetime.now(UTC).timestamp()
    assert claims["iat"] <= now + 1 and claims["exp"] == claims["iat"] + 600
    assert claims["auth_time"] <= now + 1
    assert "email" not in claims  # scope claims go to userinfo


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_id_token_algorithm_per_client(
    client: TestClient, runtime: Runtime, signed_in: str, alg: str
) -> None:
    if alg not in runtime.keyring.signing_algs():
        runtime.keyring.generate(alg, activates_at=datetime.now(UTC))  # type: ignore[arg-type]
    service = register(runtime, first_party=True, id_token_signed_response_alg=alg)
    body = tokens_for(client, Flow.new(service))
    claims = verify_jwt(client, body["id_token"])
    assert claims["header"]["alg"] == alg
    digest = hashlib.sha512 if alg == "EdDSA" else hashlib.sha256
    assert claims["at_hash"] == at_hash(body["access_token"], digest)
    assert (
        alg
        in client.get("/.well-known/openid-configuration").json()[
            "id_token_signing_alg_values_supported"
        ]
    )


def test_claims_parameter_puts_claims_in_the_id_token(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    claims = json.dumps({"id_token": {"email": {"essential": True}, "given_name": None}})
    body = tokens_for(client, Flow.new(first_party, claims=claims))
    decoded = verify_jwt(client, body["id_token"])
    assert decoded["email"] == "anahit@example.am" and decoded["given_name"] == "Anahit"


def test_pairwise_subjects_differ_per_sector_and_never_change(
    client: TestClient, runtime: Runtime, citizen: User, signed_in: str
) -> None:
    a1 = register(runtime, first_party=True, subject_type="pairwise")
    a2 = register(runtime, first_party=True, subject_type="pairwise")
    b = register(
        runtime,
        first_party=True,
        subject_type="pairwise",
        redirect_uris=["https://other.example.am/cb"],
    )
    subs = [
        verify_jwt(client, tokens_for(client, Flow.new(s))["id_token"])["sub"] for s in (a1, a2, b)
    ]
    assert subs[0] == subs[1] != subs[2]
    assert citizen.sub not in subs
    again = verify_jwt(client, tokens_for(client, Flow.new(a1))["id_token"])["sub"]
    assert again == subs[0]
    info = client.get("/userinfo", headers=bearer(tokens_for(client, Flow.new(b))["access_token"]))
    assert info.json()["sub"] == subs[2]


def test_pairwise_needs_one_host_or_a_sector_identifier(runtime: Runtime) -> None:
    from idp.services.errors import InvalidInput

    with pytest.raises(InvalidInput):
        register(
            runtime,
            subject_type="pairwise",
            redirect_uris=["https://a.example.am/cb", "https://b.example.am/cb"],
        )
    # With a sector identifier URI that lists them: tests/protocol/test_sector_identifier.py.


# Userinfo ----------------------------------------------------------------------------------


def test_userinfo_by_header_get_post_and_body(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    token = tokens_for(client, Flow.new(first_party))["access_token"]
    expected = {
        "sub",
        "name",
        "given_name",
        "family_name",
        "birthdate",
        "gender",
        "updated_at",
        "email",
        "email_verified",
    }
    for response in (
        client.get("/userinfo", headers=bearer(token)),
        client.post("/userinfo", headers=bearer(token)),
        client.post("/userinfo", data={"access_token": token}),
    ):
        assert response.status_code == 200, response.text
        assert set(response.json()) == expected
        assert response.json()["birthdate"] == "1990-04-02"
        assert response.headers["cache-control"] == "no-store"


def test_userinfo_reads_the_token_its_grant_and_its_citizen_in_one_statement(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    token = tokens_for(client, Flow.new(first_party))["access_token"]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    for engine in runtime.db.engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        assert client.get("/userinfo", headers=bearer(token)).status_code == 200
    finally:
        for engine in runtime.db.engines:
            event.remove(engine, "before_cursor_execute", seen)
    reads = [s for s in statements if s.startswith("select")]
    assert any("from access_tokens join token_grants" in s for s in reads), reads
    # No second read of the grant or the citizen by primary key.
    assert not [s for s in reads if s.split(" from ")[1].startswith(("token_grants", "users"))]


def test_userinfo_errors(client: TestClient, first_party: EService, signed_in: str) -> None:
    token = tokens_for(client, Flow.new(first_party))["access_token"]
    missing = client.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/userinfo", headers=bearer("not-a-token"))
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    twice = client.post("/userinfo", headers=bearer(token), data={"access_token": token})
    assert twice.status_code == 400
    in_query = client.get(f"/userinfo?access_token={token}")
    assert in_query.status_code == 400


def test_userinfo_releases_only_what_scope_and_claims_allow(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    token = tokens_for(client, Flow.new(first_party, scope="openid phone"))["access_token"]
    info = client.get("/userinfo", headers=bearer(token)).json()
    assert set(info) == {"sub", "phone_number", "phone_number_verified"}
    claims = json.dumps({"userinfo": {"address": None, "public_service_number": None}})
    token = tokens_for(client, Flow.new(first_party, scope="openid", claims=claims))["access_token"]
    info = client.get("/userinfo", headers=bearer(token)).json()
    assert info == {"sub": info["sub"], "address": {"country": "AM", "locality": "Yerevan"}}


def test_an_allow_list_of_claims_limits_what_is_released(
    client: TestClient, runtime: Runtime, signed_in: str
) -> None:
    service = register(runtime, first_party=True, allowed_claims=["given_name", "email"])
    tokens = tokens_for(
        client,
        Flow.new(
            service,
            scope="openid profile email",
            claims=json.dumps({"id_token": {"family_name": None, "email": None}}),
        ),
    )
    info = client.get("/userinfo", headers=bearer(tokens["access_token"])).json()
    assert set(info) == {"sub", "given_name", "email"}
    id_claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(client.get("/jwks").json()))
    assert "email" in id_claims.claims and "family_name" not in id_claims.claims


def test_national_identifiers_need_the_restricted_scope(
    client: TestClient, runtime: Runtime, signed_in: str
) -> None:
    state_service = register(runtime, first_party=True, restricted_scopes=["national_id"])
    token = tokens_for(client, Flow.new(state_service, scope="openid national_id"))["access_token"]
    info = client.get("/userinfo", headers=bearer(token)).json()
    assert info["public_service_number"] == "1234567890"
    assert info["identity_document_number"] == "AN0123456"


def test_signed_userinfo(client: TestClient, runtime: Runtime, signed_in: str) -> None:
    service = register(runtime, first_party=True, userinfo_signed_response_alg="ES256")
    token = tokens_for(client, Flow.new(service))["access_token"]
    response = client.get("/userinfo", headers=bearer(token))
    assert response.headers["content-type"].startswith("application/jwt")
    claims = verify_jwt(client, response.text)
    assert claims["header"]["alg"] == "ES256"
    assert claims["iss"] == ISSUER and claims["aud"] == service.client_id
    assert claims["given_name"] == "Anahit"


# Access tokens as JWT (RFC 9068) ------------------------------------------------------------


def test_jwt_access_tokens(client: TestClient, runtime: Runtime, signed_in: str) -> None:
    service = register(runtime, first_party=True, access_token_format="jwt")
    body = tokens_for(client, Flow.new(service))
    keys = KeySet.import_key_set(client.get("/jwks").json())
    token = jwt.decode(body["access_token"], keys, algorithms=["RS256"])
    assert token.header["typ"] == "at+jwt"
    claims = token.claims
    assert claims["iss"] == ISSUER and claims["client_id"] == service.client_id
    assert claims["scope"] == "openid profile email" and claims["jti"]
    assert claims["exp"] - claims["iat"] == 600 and claims["acr"] == "substantial"
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 200
    revoked = client.post("/revoke", data={"token": body["access_token"]}, auth=service.basic())
    assert revoked.status_code == 200
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 401


# Introspection and revocation --------------------------------------------------------------


def test_introspection(
    client: TestClient, runtime: Runtime, first_party: EService, citizen: User, signed_in: str
) -> None:
    body = tokens_for(client, Flow.new(first_party))
    active = client.post(
        "/introspect", data={"token": body["access_token"]}, auth=first_party.basic()
    )
    assert active.status_code == 200
    info = active.json()
    assert info["active"] is True and info["client_id"] == first_party.client_id
    assert info["sub"] == citizen.sub and info["scope"] == "openid profile email"
    refresh = client.post(
        "/introspect",
        data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
        auth=first_party.basic(),
    )
    assert refresh.json()["active"] is True
    other = register(runtime, first_party=True)
    foreign = client.post("/introspect", data={"token": body["access_token"]}, auth=other.basic())
    assert foreign.json() == {"active": False}
    unknown = client.post("/introspect", data={"token": "nope"}, auth=first_party.basic())
    assert unknown.json() == {"active": False}
    anonymous = client.post("/introspect", data={"token": body["access_token"]})
    assert anonymous.status_code == 401


def test_revocation(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    body = tokens_for(client, Flow.new(first_party))
    other = register(runtime, first_party=True)
    foreign = client.post("/revoke", data={"token": body["refresh_token"]}, auth=other.basic())
    assert foreign.status_code == 400
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 200
    assert client.post("/revoke", data={"token": body["refresh_token"]}).status_code == 401
    done = client.post(
        "/revoke",
        data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
        auth=first_party.basic(),
    )
    assert done.status_code == 200
    # A refresh token takes its whole grant with it.
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 401
    inactive = client.post(
        "/introspect", data={"token": body["refresh_token"]}, auth=first_party.basic()
    )
    assert inactive.json() == {"active": False}
    unknown = client.post("/revoke", data={"token": "unknown"}, auth=first_party.basic())
    assert unknown.status_code == 200


# Discovery ---------------------------------------------------------------------------------


def test_discovery_lists_exactly_what_is_supported(client: TestClient) -> None:
    meta = client.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == ISSUER
    for name in ("authorization", "token", "userinfo", "introspection", "revocation"):
        assert meta[f"{name}_endpoint"].startswith(ISSUER + "/")
    assert meta["response_types_supported"] == ["code"]
    assert meta["response_modes_supported"] == ["query", "form_post"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["request_parameter_supported"] is False
    assert meta["request_uri_parameter_supported"] is False
    assert meta["claims_parameter_supported"] is True
    assert meta["subject_types_supported"] == ["public", "pairwise"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert "national_id" in meta["scopes_supported"]
    for claim in ("given_name", "email_verified", "public_service_number", "acr", "sid"):
        assert claim in meta["claims_supported"]
    assert meta["acr_values_supported"] == ["low", "substantial"]
    assert meta["ui_locales_supported"] == ["hy", "en", "ru"]
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]
    assert "HS256" not in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert set(meta["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
