"""Bad input never breaks an endpoint: a clear error, never a 500, nothing echoed raw."""

from __future__ import annotations

import itertools

from starlette.testclient import TestClient

from idp.runtime import Runtime

from .conftest import Flow, authorize, register

WEIRD = ["", "\r\n", '"', "\\", "é", "x" * 5000, "\x00", "<b>", "null"]
AUTHORIZE_PARAMETERS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "claims",
    "acr_values",
    "id_token_hint",
    "response_mode",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "ui_locales",
]
TOKEN_PARAMETERS = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "client_assertion",
    "client_assertion_type",
    "client_id",
    "client_secret",
]


def test_authorization_endpoint_survives_odd_values(
    client: TestClient, runtime: Runtime, signed_in: str
) -> None:
    service = register(runtime)
    for name, value in itertools.product(AUTHORIZE_PARAMETERS, WEIRD):
        flow = Flow.new(service, **{name: value})
        assert authorize(client, flow).status_code < 500, (name, value)
        posted = client.post("/authorize", data=flow.params, follow_redirects=False)
        assert posted.status_code < 500, (name, value)


def test_token_endpoints_survive_odd_values(
    client: TestClient, runtime: Runtime, signed_in: str
) -> None:
    service = register(runtime)
    for name, value in itertools.product(TOKEN_PARAMETERS, WEIRD):
        for auth in (None, service.basic(), ('a"b', "c:d%zz")):
            data = {"grant_type": "authorization_code", name: value}
            response = client.post("/token", data=data, auth=auth)
            assert response.status_code < 500, (name, value)
            description = response.json().get("error_description", "")
            assert not any(ch in description for ch in "\r\n\t\x00")
    for path, name, value in itertools.product(
        ("/introspect", "/revoke"), ("token", "token_type_hint"), WEIRD
    ):
        response = client.post(path, data={"token": "a", name: value}, auth=service.basic())
        assert response.status_code < 500, (path, name, value)
    for value in (w for w in WEIRD if w.isascii() and "\r" not in w and "\x00" not in w):
        assert (
            client.get("/userinfo", headers={"Authorization": f"Bearer {value}"}).status_code < 500
        )


def test_unknown_interactions_get_our_page(client: TestClient) -> None:
    for path in ("/authorize/resume/x", "/authorize/cancel/" + "x" * 100, "/consent/abc"):
        assert client.get(path).status_code == 400
