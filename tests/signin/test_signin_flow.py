"""Signing in as a browser does: password, then a one-time code, then back to the e-service."""

from __future__ import annotations

import re

from idp.runtime import Runtime
from tests.signin.helpers import (
    SERVICE_NAME,
    Browser,
    add_citizen,
    events_of,
    interaction_row,
    resume_location,
)


def test_password_then_totp_creates_a_session_and_resumes(
    browser: Browser, runtime: Runtime
) -> None:
    citizen = add_citizen(runtime)
    interaction_id = browser.start()

    page = browser.page(f"/login/{interaction_id}")
    assert page.status_code == 200
    assert SERVICE_NAME in page.text
    assert f'href="/authorize/cancel/{interaction_id}"' in page.text
    assert 'autocomplete="username"' in page.text
    assert 'autocomplete="current-password"' in page.text

    after_password = browser.submit(page, {"username": "Anahit", "password": citizen.password})
    assert after_password.headers["location"] == f"/login/{interaction_id}/totp"
    assert browser.session_cookie() is None  # half-way: nothing usable yet

    code_page = browser.follow(after_password)
    assert 'autocomplete="one-time-code"' in code_page.text
    assert SERVICE_NAME in code_page.text
    done = browser.submit(code_page, {"code": citizen.code()})
    assert done.headers["location"] == resume_location(interaction_id)
    set_cookie = done.headers["set-cookie"]
    assert "idp_session=" in set_cookie
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie.replace("Lax", "lax")

    interaction = interaction_row(runtime, interaction_id)
    assert interaction.user_id == citizen.id
    assert interaction.amr == ["pwd", "otp", "mfa"]
    kinds = [(e.type, e.outcome) for e in events_of(runtime, "auth.password")]
    assert kinds == [("auth.password", "success")]
    assert [e.outcome for e in events_of(runtime, "auth.otp")] == ["success"]
    signed_in = events_of(runtime, "auth.signed_in")
    assert signed_in[0].data["acr"] == "substantial"
    assert signed_in[0].client_id == "tax"


def test_every_post_is_answered_with_303_and_forms_carry_csrf(
    browser: Browser, runtime: Runtime
) -> None:
    add_citizen(runtime)
    interaction_id = browser.start()
    page = browser.page(f"/login/{interaction_id}")
    assert re.search(r'name="csrf_token" value="[0-9a-f]{64}"', page.text)
    forged = browser.client.post(
        f"/login/{interaction_id}",
        data={"username": "anahit", "password": "x", "csrf_token": "0" * 64},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert "<html lang=" in forged.text
    missing = browser.client.post(
        f"/login/{interaction_id}", data={"username": "anahit"}, follow_redirects=False
    )
    assert missing.status_code == 403
