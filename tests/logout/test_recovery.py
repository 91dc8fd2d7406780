"""When an account's credentials change or it is recovered, nothing obtained before survives.

For each way it happens (a password reset by the emailed link, a second-factor reset by an
administrator through the console, the admin API or the CLI, a role change with the CLI, a
password change on the account pages, an administrator disabling the account, even if it is
enabled again), an e-service that signed the citizen in beforehand finds its
refresh token refused, its access token inactive at introspection, its code not yet redeemed
refused, and hears about it at its back-channel logout URI; a sign-in in progress in another
browser starts again. Sessions ended by an administrator end the grants and tell the
e-services too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.app import create_app
from idp.cli import main
from idp.config import Settings
from idp.db.models import SsoSession
from idp.logout import delivery
from idp.logout.token import BACKCHANNEL_EVENT
from idp.runtime import Runtime
from tests.admin.api_helpers import admin_client, token
from tests.admin.conftest import Console, admin
from tests.logout.conftest import Receiver, eservice, verify_logout_token
from tests.protocol.conftest import EService, Flow, get_code, redeem, sign_in, tokens_for
from tests.signin.helpers import Browser, Citizen, add_citizen, outbox

NEW_PASSWORD = "quiet orchard beyond the aragats"


@dataclass
class Before:
    """What the e-service and an attacker held before the recovery."""

    tokens: dict[str, Any]
    pending: tuple[Flow, str]  # a code issued, not yet redeemed
    attacker: Browser
    attacker_at: str  # the interaction in which the attacker passed the password step
    attacker_page: httpx.Response  # ... and now sees the page asking for the one-time code


@dataclass
class World:
    runtime: Runtime
    http: TestClient  # the citizen's browser
    citizen: Citizen
    service: EService
    receiver: Receiver


def new_browser(runtime: Runtime) -> TestClient:
    app = create_app(runtime=runtime)
    return TestClient(app, base_url=runtime.settings.issuer, headers={"Accept-Language": "en"})


def obtain(world: World) -> Before:
    """The citizen signs in to the e-service (a real code flow: tokens, and one more code not
    redeemed yet); an attacker who knows the password is at the second-factor step."""
    sign_in(world.http, world.runtime, world.citizen)  # type: ignore[arg-type]
    held = tokens_for(world.http, Flow.new(world.service, scope="openid profile offline_access"))
    assert held["refresh_token"] and held["access_token"]
    flow = Flow.new(world.service)
    code = get_code(world.http, flow)
    attacker = Browser(new_browser(world.runtime), world.runtime)
    at = attacker.start(world.service.client_id)
    sent = attacker.sign_in_password(at, world.citizen.username, world.citizen.password)
    assert sent.headers["location"] == f"/login/{at}/totp"
    return Before(held, (flow, code), attacker, at, attacker.page(f"/login/{at}/totp"))


def assert_everything_ended(world: World, before: Before) -> None:
    http, service = world.http, world.service
    refreshed = http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": before.tokens["refresh_token"]},
        auth=service.basic(),
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    for kind in ("access_token", "refresh_token"):
        introspected = http.post(
            "/introspect", data={"token": before.tokens[kind]}, auth=service.basic()
        )
        assert introspected.status_code == 200 and introspected.json() == {"active": False}
    flow, code = before.pending
    redeemed = redeem(http, flow, code)
    assert redeemed.status_code == 400 and redeemed.json()["error"] == "invalid_grant"

    delivery.deliver_due_now(world.runtime)
    [logout_token] = world.receiver.tokens
    claims = verify_logout_token(http, logout_token)
    assert claims["header"]["typ"] == "logout+jwt"
    assert claims["iss"] == world.runtime.settings.issuer
    assert claims["aud"] == service.client_id
    assert claims["sub"] == before.tokens["sub"]
    assert claims["events"] == {BACKCHANNEL_EVENT: {}}
    assert "sid" not in claims  # every session of the citizen at the e-service

    # The attacker's sign-in in progress proves nothing any more: back to the password.
    attacker, at = before.attacker, before.attacker_at
    assert world.citizen.totp_secret
    after = attacker.submit(before.attacker_page, {"code": world.citizen.code()})
    assert after.headers["location"] == f"/login/{at}"


def live_sessions(runtime: Runtime, citizen: Citizen) -> list[SsoSession]:
    with runtime.db.read() as db:
        query = select(SsoSession).where(
            SsoSession.user_id == citizen.id, SsoSession.ended_at.is_(None)
        )
        return list(db.scalars(query))


# The ways an account is recovered or its credentials change ---------------------------------


def reset_password_by_email(world: World, admin: Citizen) -> None:
    browser = Browser(world.http, world.runtime)
    interaction_id = browser.start(world.service.client_id, force_login=True)
    forgot = browser.page(f"/login/{interaction_id}/forgot")
    browser.submit(forgot, {"username": world.citizen.username})
    [mail] = outbox(world.runtime)
    link = re.search(r"http://localhost:8000(/password/reset/\S+)", mail["text"])
    assert link
    page = browser.page(link.group(1))
    done = browser.submit(page, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.headers["location"].startswith("/password/reset-done")


def change_password_on_the_account_page(world: World, admin: Citizen) -> None:
    elsewhere = new_browser(world.runtime)
    sign_in(elsewhere, world.runtime, world.citizen)  # type: ignore[arg-type]
    console = Console(world.http, world.runtime)
    page = console.get("/account/password")
    assert page.status_code == 200, page.text
    changed = console.post_form(
        page,
        "/account/password",
        {"current": world.citizen.password, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert changed.headers["location"] == "/account?done=password"
    # The citizen's own session, where the change was made, stays; every other one ended.
    assert console.get("/account").status_code == 200
    assert len(live_sessions(world.runtime, world.citizen)) == 1


def _console_actions(*actions: str) -> Callable[[World, Citizen], None]:
    def run(world: World, admin: Citizen) -> None:
        console = Console(new_browser(world.runtime), world.runtime)
        detail = f"/admin/citizens/{world.citizen.username}"
        for action in actions:
            page = console.open(admin, detail)
            if f'action="{detail}/{action}"' not in page.text:  # confirmed on its own page
                page = console.open(admin, f"{detail}/{action}")
            sent = console.post_form(page, f"{detail}/{action}")
            assert sent.status_code == 303 and "?done=" in sent.headers["location"], sent.text

    return run


def reset_second_factor_by_api(world: World, admin: Citizen) -> None:
    api = admin_client(world.runtime)
    http = new_browser(world.runtime)
    bearer = token(http, api)
    response = http.post(
        f"/admin/api/v1/citizens/{world.citizen.username}/reset-second-factor",
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert response.status_code == 200, response.text


def reset_second_factor_by_cli(world: World, admin: Citizen) -> None:
    assert main(["users", "reset-second-factor", world.citizen.username, "--json"]) == 0


def grant_admin_role_by_cli(world: World, admin: Citizen) -> None:
    assert main(["users", "grant-admin", world.citizen.username, "--json"]) == 0


RECOVERIES = {
    "password reset by email": reset_password_by_email,
    "password change on the account page": change_password_on_the_account_page,
    "second factor reset in the console": _console_actions("reset-second-factor"),
    "second factor reset by the admin API": reset_second_factor_by_api,
    "second factor reset by the CLI": reset_second_factor_by_cli,
    "administrator role granted by the CLI": grant_admin_role_by_cli,
    # Enabled again: nothing of before comes back to life with it.
    "account disabled and enabled again in the console": _console_actions("disable", "enable"),
}


@pytest.mark.parametrize("recovery", RECOVERIES.values(), ids=RECOVERIES.keys())
def test_recovering_an_account_ends_every_grant_and_tells_the_eservices(
    client: TestClient,
    runtime: Runtime,
    receiver: Receiver,
    admin: Citizen,
    cli_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    recovery: Callable[[World, Citizen], None],
) -> None:
    monkeypatch.setenv("IDP_CLIENT_FETCH_PRIVATE_ADDRESSES", "true")
    citizen = add_citizen(runtime, "narek", email="narek@example.am")
    service = eservice(
        runtime, "tax", backchannel_logout_uri=receiver.uri, scope="openid profile offline_access"
    )
    world = World(runtime, client, citizen, service, receiver)
    before = obtain(world)
    before.tokens["sub"] = verify_logout_token(client, before.tokens["id_token"])["sub"]

    recovery(world, admin)

    assert_everything_ended(world, before)


@pytest.mark.usefixtures("cli_env")
def test_after_a_reset_by_the_cli_the_next_sign_in_sets_up_a_new_app(
    capsys: pytest.CaptureFixture[str], runtime: Runtime
) -> None:
    citizen = add_citizen(runtime, "narek", email="narek@example.am")
    assert main(["users", "reset-second-factor", "narek", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totp"] is False
    browser = Browser(new_browser(runtime), runtime)
    at = browser.start()
    sent = browser.sign_in_password(at, citizen.username, citizen.password)
    assert sent.headers["location"] == f"/login/{at}/enrol"
    assert "<svg" in browser.follow(sent).text  # a new authenticator app to scan


def test_sessions_ended_by_the_cli_end_the_grants_and_tell_the_eservices(
    capsys: pytest.CaptureFixture[str],
    client: TestClient,
    runtime: Runtime,
    receiver: Receiver,
    cli_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDP_CLIENT_FETCH_PRIVATE_ADDRESSES", "true")
    citizen = add_citizen(runtime, "narek", email="narek@example.am")
    service = eservice(
        runtime, "tax", backchannel_logout_uri=receiver.uri, scope="openid profile offline_access"
    )
    sign_in(client, runtime, citizen)  # type: ignore[arg-type]
    held = tokens_for(client, Flow.new(service, scope="openid profile offline_access"))
    assert len(live_sessions(runtime, citizen)) == 1

    assert main(["users", "end-sessions", "narek", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"username": "narek", "ended": 1}

    assert live_sessions(runtime, citizen) == []
    refreshed = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": held["refresh_token"]},
        auth=service.basic(),
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    introspected = client.post(
        "/introspect", data={"token": held["access_token"]}, auth=service.basic()
    )
    assert introspected.json() == {"active": False}
    delivery.deliver_due_now(runtime)
    [logout_token] = receiver.tokens
    claims = verify_logout_token(client, logout_token)
    assert claims["aud"] == service.client_id
    assert claims["sub"] == verify_logout_token(client, held["id_token"])["sub"]


__all__ = ["admin"]  # the administrator, a fixture
