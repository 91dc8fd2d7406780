"""Sign-in, resume, consent and cancel: the pages between `/authorize` and the e-service."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from idp.db.models import User
from idp.oauth import consents
from idp.runtime import Runtime
from tests.signin.helpers import Browser, add_citizen, forms

from .conftest import EService, Flow, authorize, redeem, redirect_params, register, sign_in


def consent_page(client: TestClient, flow: Flow) -> Any:
    response = authorize(client, flow)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/consent/")
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    return page


def answer(client: TestClient, page: Any, decision: str) -> Any:
    form = next(f for f in forms(page.text) if f.method == "post")
    return client.post(
        form.action, data={**form.fields, "decision": decision}, follow_redirects=False
    )


def test_consent_lists_the_service_and_exact_claims_and_is_remembered(
    client: TestClient, runtime: Runtime, service: EService, signed_in: str, citizen: User
) -> None:
    flow = Flow.new(service, scope="openid email", ui_locales="en")
    page = consent_page(client, flow)
    assert "Tax service" in page.text
    assert "Email address" in page.text and "Family name" not in page.text
    granted = answer(client, page, "allow")
    assert granted.status_code == 303
    params = redirect_params(granted)
    assert params["state"] == flow.params["state"] and params["iss"] == "http://localhost:8000"
    issued = redeem(client, flow, params["code"]).json()
    # Remembered for this client and these scopes: no page the next time.
    again = Flow.new(service, scope="openid email")
    assert "code" in redirect_params(authorize(client, again))
    # A wider set, or prompt=consent, asks again.
    consent_page(client, Flow.new(service, scope="openid email phone"))
    consent_page(client, Flow.new(service, scope="openid email", prompt="consent"))
    # Withdrawn in the account: asked again.
    with runtime.db.transaction() as db:
        assert consents.revoke(db, citizen.id, service.client_id) == 1
    consent_page(client, Flow.new(service, scope="openid email"))
    # ...and the e-service's tokens from it stop working.
    refreshed = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        auth=service.basic(),
    )
    assert refreshed.status_code == 400


def test_denied_consent_is_access_denied(
    client: TestClient, service: EService, signed_in: str
) -> None:
    flow = Flow.new(service)
    denied = answer(client, consent_page(client, flow), "deny")
    params = redirect_params(denied)
    assert params["error"] == "access_denied" and params["state"] == flow.params["state"]


def test_consent_form_needs_its_csrf_token(
    client: TestClient, service: EService, signed_in: str
) -> None:
    page = consent_page(client, Flow.new(service))
    form = next(f for f in forms(page.text) if f.method == "post")
    response = client.post(form.action, data={"decision": "allow"}, follow_redirects=False)
    assert response.status_code == 403


def test_consent_page_in_another_browser_leads_nowhere(
    client: TestClient, runtime: Runtime, service: EService, signed_in: str
) -> None:
    response = authorize(client, Flow.new(service))
    location = response.headers["location"]
    client.cookies.clear()
    page = client.get(location)
    assert page.status_code == 400


def test_resume_after_sign_in_issues_the_code_once(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    service = register(runtime, first_party=True)
    flow = Flow.new(service)
    started = authorize(client, flow)
    interaction_id = started.headers["location"].rsplit("/", 1)[1]
    sign_in(client, runtime, citizen)
    resumed = client.get(f"/authorize/resume/{interaction_id}", follow_redirects=False)
    params = redirect_params(resumed)
    assert params["state"] == flow.params["state"]
    assert redeem(client, flow, params["code"]).status_code == 200
    again = client.get(f"/authorize/resume/{interaction_id}", follow_redirects=False)
    assert again.status_code == 400


def test_resume_without_a_session_goes_back_to_sign_in(
    client: TestClient, runtime: Runtime, service: EService
) -> None:
    started = authorize(client, Flow.new(service))
    interaction_id = started.headers["location"].rsplit("/", 1)[1]
    resumed = client.get(f"/authorize/resume/{interaction_id}", follow_redirects=False)
    assert resumed.headers["location"] == f"/login/{interaction_id}"


def test_cancel_answers_access_denied(client: TestClient, service: EService) -> None:
    flow = Flow.new(service, response_mode="form_post")
    started = authorize(client, flow)
    interaction_id = started.headers["location"].rsplit("/", 1)[1]
    cancelled = client.get(f"/authorize/cancel/{interaction_id}", follow_redirects=False)
    assert cancelled.status_code == 200
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', cancelled.text))
    assert fields["error"] == "access_denied" and fields["state"] == flow.params["state"]
    assert client.get(f"/authorize/cancel/{interaction_id}").status_code == 400


@pytest.fixture
def browser(client: TestClient, runtime: Runtime) -> Browser:
    return Browser(client, runtime)


def test_full_flow_through_the_sign_in_pages(
    client: TestClient, runtime: Runtime, service: EService, browser: Browser
) -> None:
    citizen = add_citizen(runtime, "narek")
    flow = Flow.new(service, scope="openid profile", prompt="login")
    started = authorize(client, flow)
    login = browser.page(started.headers["location"])
    after_password = browser.submit(login, {"username": "narek", "password": citizen.password})
    code_page = browser.follow(after_password)
    done = browser.submit(code_page, {"code": citizen.code()})
    assert done.headers["location"].startswith("/authorize/resume/")
    to_consent = client.get(done.headers["location"], follow_redirects=False)
    page = client.get(to_consent.headers["location"])
    granted = answer(client, page, "allow")
    tokens = redeem(client, flow, redirect_params(granted)["code"]).json()
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.json()["given_name"] == "Anahit"
