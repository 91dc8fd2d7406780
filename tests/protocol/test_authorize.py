"""The authorization endpoint: validation, errors, prompts, PKCE, response modes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from idp.db.models import Interaction, User
from idp.runtime import Runtime
from tests.signin.helpers import heading

from .conftest import (
    REDIRECT_URI,
    EService,
    Flow,
    authorize,
    get_code,
    redirect_params,
    register,
    sign_in,
    tokens_for,
)


@pytest.fixture
def first_party(runtime: Runtime) -> EService:
    return register(runtime, first_party=True)


def assert_error_page(response: object) -> None:
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "text/html" in response.headers["content-type"]  # type: ignore[attr-defined]
    assert "location" not in response.headers  # type: ignore[attr-defined]


def assert_redirect_error(response: object, flow: Flow, error: str) -> dict[str, str]:
    params = redirect_params(response)
    assert response.headers["location"].startswith(flow.service.redirect_uri)  # type: ignore[attr-defined]
    assert params["error"] == error, params
    assert params["state"] == flow.params["state"]
    assert params["iss"] == "http://localhost:8000"
    return params


# Client and redirect URI: our page, never a redirect ---------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "no-such-client"},
        {"client_id": None},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": REDIRECT_URI + "/"},
        {"redirect_uri": "https://EService.example.am/callback"},
        {"redirect_uri": None},
    ],
)
def test_bad_client_or_redirect_uri_shows_our_page(
    client: TestClient, service: EService, change: dict[str, str | None]
) -> None:
    flow = Flow.new(service, **change)  # type: ignore[arg-type]
    response = authorize(client, flow)
    assert_error_page(response)
    assert heading(response.text)  # our page, in the citizen's language


def test_error_page_escapes_what_it_reflects(client: TestClient, service: EService) -> None:
    flow = Flow.new(service, client_id="<script>alert(1)</script>")
    response = authorize(client, flow)
    assert_error_page(response)
    assert "<script>alert(1)" not in response.text


def test_disabled_client_is_refused_on_our_page(
    client: TestClient, runtime: Runtime, service: EService
) -> None:
    from idp.services import clients as client_service

    with runtime.db.transaction() as db:
        client_service.set_disabled(db, service.client_id, True, actor="test")
    assert_error_page(authorize(client, Flow.new(service)))


def test_repeated_client_id_shows_our_page(client: TestClient, service: EService) -> None:
    flow = Flow.new(service)
    query = "&".join(f"{k}={v}" for k, v in flow.params.items())
    response = client.get(
        f"/authorize?{query}&client_id={service.client_id}", follow_redirects=False
    )
    assert_error_page(response)


# Other errors go back to the e-service with state and iss ----------------------------------


def test_repeated_parameter_is_refused(client: TestClient, service: EService) -> None:
    flow = Flow.new(service)
    items = [*flow.params.items(), ("scope", "openid")]
    response = client.get("/authorize", params=items, follow_redirects=False)
    assert_redirect_error(response, flow, "invalid_request")


def test_unknown_parameters_are_ignored(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    flow = Flow.new(first_party, vendor_extension="whatever")
    assert get_code(client, flow)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"scope": "profile email"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"claims": "{not json"}, "invalid_request"),
        ({"claims": '{"userinfo": []}'}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://eservice.example.am/r/1"}, "request_uri_not_supported"),
        ({"id_token_hint": "not-a-token"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
    ],
)
def test_invalid_requests_are_answered_with_the_right_error(
    client: TestClient, service: EService, change: dict[str, str | None], error: str
) -> None:
    flow = Flow.new(service, **change)  # type: ignore[arg-type]
    assert_redirect_error(authorize(client, flow), flow, error)


def test_state_is_echoed_exactly(client: TestClient, first_party: EService, signed_in: str) -> None:
    state = "a b&c=d/é+%20"
    flow = Flow.new(first_party, state=state)
    assert get_code(client, flow)  # get_code compares the state


def test_client_without_the_code_grant_is_unauthorized(
    client: TestClient, runtime: Runtime
) -> None:
    service = register(
        runtime, redirect_uris=[], grant_types=["client_credentials"], scope="profile"
    )
    flow = Flow.new(service)
    # Without registered redirect URIs nothing can be redirected to: our page.
    assert_error_page(authorize(client, flow))


def test_restricted_scope_needs_authorisation(client: TestClient, service: EService) -> None:
    flow = Flow.new(service, scope="openid national_id")
    assert_redirect_error(authorize(client, flow), flow, "invalid_scope")


def test_unregistered_scopes_are_left_out(
    client: TestClient, runtime: Runtime, signed_in: str
) -> None:
    service = register(runtime, scope="openid email", first_party=True)
    body = tokens_for(client, Flow.new(service, scope="openid email profile unknown_scope"))
    assert body["scope"] == "openid email"


def test_post_to_authorize_works_like_get(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    flow = Flow.new(first_party)
    response = client.post("/authorize", data=flow.params, follow_redirects=False)
    assert response.status_code == 303
    assert redirect_params(response)["code"]


# PKCE ----------------------------------------------------------------------------------------


def test_confidential_client_may_opt_out_of_pkce(
    client: TestClient, runtime: Runtime, signed_in: str
) -> None:
    service = register(runtime, first_party=True, require_pkce=False)
    flow = Flow.new(service, code_challenge=None, code_challenge_method=None)
    flow.verifier = ""
    code = get_code(client, flow)
    response = client.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=service.basic(),
    )
    assert response.status_code == 200, response.text


def test_public_client_must_use_pkce(client: TestClient, runtime: Runtime) -> None:
    service = register(runtime, auth_method="none", redirect_uris=["http://127.0.0.1/callback"])
    flow = Flow.new(service, code_challenge=None, code_challenge_method=None)
    assert_redirect_error(authorize(client, flow), flow, "invalid_request")


def test_loopback_redirect_uri_may_use_any_port(
    client: TestClient, runtime: Runtime, signed_in: str
) -> None:
    service = register(
        runtime,
        auth_method="none",
        redirect_uris=["http://127.0.0.1/callback"],
        first_party=True,
    )
    service.redirect_uri = "http://127.0.0.1:51234/callback"
    flow = Flow.new(service)
    body = tokens_for(client, flow)
    assert "access_token" in body
    other_path = Flow.new(service, redirect_uri="http://127.0.0.1:51234/other")
    assert_error_page(authorize(client, other_path))


# Response modes ----------------------------------------------------------------------------


def test_form_post_response_mode(client: TestClient, first_party: EService, signed_in: str) -> None:
    flow = Flow.new(first_party, response_mode="form_post")
    response = authorize(client, flow)
    assert response.status_code == 200
    assert f'action="{REDIRECT_URI}"' in response.text
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', response.text))
    assert fields["state"] == flow.params["state"]
    assert fields["iss"] == "http://localhost:8000"
    assert fields["code"]
    assert response.headers["cache-control"] == "no-store"
    csp = response.headers["content-security-policy"]
    assert "form-action https://eservice.example.am" in csp and "frame-ancestors 'none'" in csp


def test_errors_use_form_post_too(client: TestClient, service: EService) -> None:
    flow = Flow.new(service, response_mode="form_post", scope="profile")
    response = authorize(client, flow)
    assert response.status_code == 200
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', response.text))
    assert fields["error"] == "invalid_scope"
    assert fields["iss"] == "http://localhost:8000"


# Sessions and prompts ----------------------------------------------------------------------


def test_without_session_the_citizen_goes_to_sign_in(
    client: TestClient, runtime: Runtime, service: EService
) -> None:
    flow = Flow.new(service, login_hint="anahit", ui_locales="en hy")
    response = authorize(client, flow)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login/")
    interaction_id = location.rsplit("/", 1)[1]
    with runtime.db.read() as db:
        interaction = db.get(Interaction, interaction_id)
        assert interaction is not None
        assert interaction.client_id == service.client_id
        assert interaction.login_hint == "anahit"
        assert interaction.ui_locales == "en hy"
        assert interaction.params["state"] == flow.params["state"]
        assert "vendor" not in interaction.params


def test_prompt_none_without_session_is_login_required(
    client: TestClient, service: EService
) -> None:
    flow = Flow.new(service, prompt="none")
    assert_redirect_error(authorize(client, flow), flow, "login_required")


def test_prompt_none_without_consent_is_consent_required(
    client: TestClient, service: EService, signed_in: str
) -> None:
    flow = Flow.new(service, prompt="none")
    assert_redirect_error(authorize(client, flow), flow, "consent_required")


def test_prompt_none_with_session_and_consent_answers_at_once(
    client: TestClient, first_party: EService, signed_in: str
) -> None:
    assert get_code(client, Flow.new(first_party, prompt="none"))


def test_prompt_login_forces_sign_in(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    response = authorize(client, Flow.new(first_party, prompt="login"))
    assert response.headers["location"].startswith("/login/")
    with runtime.db.read() as db:
        interaction = db.get(Interaction, response.headers["location"].rsplit("/", 1)[1])
        assert interaction is not None and interaction.force_login


def test_max_age_exceeded_forces_sign_in(
    client: TestClient, runtime: Runtime, first_party: EService, citizen: User
) -> None:
    sign_in(client, runtime, citizen, auth_time=datetime.now(UTC) - timedelta(seconds=600))
    response = authorize(client, Flow.new(first_party, max_age="300"))
    assert response.headers["location"].startswith("/login/")
    assert get_code(client, Flow.new(first_party, max_age="3600"))


def test_max_age_exceeded_with_prompt_none_is_login_required(
    client: TestClient, runtime: Runtime, first_party: EService, citizen: User
) -> None:
    sign_in(client, runtime, citizen, auth_time=datetime.now(UTC) - timedelta(seconds=600))
    flow = Flow.new(first_party, max_age="60", prompt="none")
    assert_redirect_error(authorize(client, flow), flow, "login_required")


def test_acr_values_higher_than_the_session_asks_for_step_up(
    client: TestClient, runtime: Runtime, first_party: EService, citizen: User
) -> None:
    sign_in(client, runtime, citizen, acr="low", amr=["pwd"])
    response = authorize(client, Flow.new(first_party, acr_values="substantial"))
    assert response.headers["location"].startswith("/login/")
    with runtime.db.read() as db:
        interaction = db.get(Interaction, response.headers["location"].rsplit("/", 1)[1])
        assert interaction is not None and interaction.required_acr == "substantial"
    # A level the session has is fine, and an essential acr in `claims` counts the same way.
    assert get_code(client, Flow.new(first_party, acr_values="low"))
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": ["substantial"]}}})
    flow = Flow.new(first_party, claims=essential)
    assert authorize(client, flow).headers["location"].startswith("/login/")


def test_id_token_hint_of_the_signed_in_citizen_is_accepted(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    id_token = tokens_for(client, Flow.new(first_party))["id_token"]
    assert get_code(client, Flow.new(first_party, prompt="none", id_token_hint=id_token))


def test_id_token_hint_of_someone_else_needs_sign_in(
    client: TestClient, runtime: Runtime, first_party: EService, citizen: User
) -> None:
    other = __import__("tests.protocol.conftest", fromlist=["make_citizen"]).make_citizen(
        runtime, "bagrat"
    )
    sign_in(client, runtime, other)
    hint = tokens_for(client, Flow.new(first_party))["id_token"]
    sign_in(client, runtime, citizen)
    flow = Flow.new(first_party, prompt="none", id_token_hint=hint)
    assert_redirect_error(authorize(client, flow), flow, "login_required")
    assert (
        authorize(client, Flow.new(first_party, id_token_hint=hint))
        .headers["location"]
        .startswith("/login/")
    )


def test_id_token_hint_for_another_client_is_refused(
    client: TestClient, runtime: Runtime, first_party: EService, signed_in: str
) -> None:
    other = register(runtime, first_party=True, redirect_uris=["https://other.example.am/cb"])
    hint = tokens_for(client, Flow.new(other))["id_token"]
    flow = Flow.new(first_party, id_token_hint=hint)
    assert_redirect_error(authorize(client, flow), flow, "invalid_request")
