"""RP-initiated logout: `end_session_endpoint` (GET and POST), the confirmation page, redirects
only to registered addresses, and the session, cookie and tokens it ends."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.auth import sessions
from idp.db.models import Event, SsoSession, User
from idp.runtime import Runtime
from tests.logout.conftest import eservice, sign_in_to
from tests.protocol.conftest import Flow, authorize, sign_in, tokens_for
from tests.signin.helpers import forms, heading


def logout(http: TestClient, **params: str) -> Any:
    return http.get("/logout", params=params, follow_redirects=False)


def session_alive(runtime: Runtime, sid: str) -> bool:
    with runtime.db.transaction() as db:
        row = db.scalar(select(SsoSession).where(SsoSession.sid == sid))
        return row is not None and row.ended_at is None


def signed_out_page(http: TestClient, response: Any) -> Any:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/logout/done?"), location
    return http.get(location)


def refresh(http: TestClient, service: Any, token: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    return http.post("/token", data=data, auth=service.basic())


def test_discovery_advertises_single_logout(client: TestClient) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["end_session_endpoint"] == "http://localhost:8000/logout"
    for name in (
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ):
        assert metadata[name] is True


def test_logout_with_hint_ends_the_session_and_returns_with_state(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax")
    signed = sign_in_to(client, runtime, citizen, tax)
    response = logout(
        client,
        id_token_hint=signed.tokens[tax.client_id]["id_token"],
        post_logout_redirect_uri="https://tax.example.am/signed-out",
        state="st-42",
    )
    assert response.status_code == 303
    assert response.headers["location"] == "https://tax.example.am/signed-out?state=st-42"
    assert response.headers["cache-control"] == "no-store"
    cleared = response.headers["set-cookie"]
    assert cleared.startswith(f'{sessions.cookie_name(runtime.settings)}=""')
    assert "Max-Age=0" in cleared
    assert not session_alive(runtime, signed.sid)
    # Signing in again asks for the password: the single sign-on session is over.
    again = authorize(client, Flow.new(tax))
    assert again.status_code == 303 and "/login/" in again.headers["location"]
    with runtime.db.transaction() as db:
        event = db.scalar(select(Event).where(Event.type == "logout.completed"))
        assert event is not None
        assert event.client_id == tax.client_id and event.data["sid"] == signed.sid


def test_post_works_like_get(client: TestClient, runtime: Runtime, citizen: User) -> None:
    tax = eservice(runtime, "tax")
    signed = sign_in_to(client, runtime, citizen, tax)
    response = client.post(
        "/logout",
        data={
            "id_token_hint": signed.tokens[tax.client_id]["id_token"],
            "client_id": tax.client_id,
            "post_logout_redirect_uri": "https://tax.example.am/signed-out",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "https://tax.example.am/signed-out"
    assert not session_alive(runtime, signed.sid)


def test_an_expired_hint_is_still_accepted(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax")
    signed = sign_in_to(client, runtime, citizen, tax)
    now = int(time.time())
    expired = runtime.keyring.sign(
        {
            "iss": runtime.settings.issuer,
            "sub": citizen.sub,
            "aud": tax.client_id,
            "iat": now - 7200,
            "exp": now - 3600,
            "sid": signed.sid,
        },
        alg="RS256",
    )
    response = logout(
        client, id_token_hint=expired, post_logout_redirect_uri="https://tax.example.am/signed-out"
    )
    assert response.headers["location"] == "https://tax.example.am/signed-out"
    assert not session_alive(runtime, signed.sid)


def test_unregistered_redirect_is_not_followed(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax")
    signed = sign_in_to(client, runtime, citizen, tax)
    response = logout(
        client,
        id_token_hint=signed.tokens[tax.client_id]["id_token"],
        post_logout_redirect_uri="https://tax.example.am/signed-out/../evil",
        state="st",
    )
    page = signed_out_page(client, response)
    assert page.status_code == 200
    assert heading(page.text) == "You have signed out"
    assert "tax.example.am" not in page.text
    assert not session_alive(runtime, signed.sid)  # the hint was good: the logout happened


def test_a_forged_hint_or_another_audience_needs_the_citizen_to_confirm(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax")
    other = eservice(runtime, "other")
    signed = sign_in_to(client, runtime, citizen, tax)
    stranger = RSAKey.generate_key(2048, private=True)
    forged = jwt.encode(
        {"alg": "RS256", "kid": runtime.keyring.signing_key("RS256").kid},  # type: ignore[union-attr]
        {
            "iss": runtime.settings.issuer,
            "sub": citizen.sub,
            "aud": tax.client_id,
            "sid": signed.sid,
        },
        stranger,
    )
    hint = signed.tokens[tax.client_id]["id_token"]
    for params in (
        {"id_token_hint": forged},
        {"id_token_hint": hint, "client_id": other.client_id},
        {"id_token_hint": "not.a.token"},
    ):
        page = logout(
            client, **params, post_logout_redirect_uri="https://tax.example.am/signed-out"
        )
        assert page.status_code == 200
        assert heading(page.text) == "Sign out"
        assert session_alive(runtime, signed.sid)
        form = forms(page.text)[0]
        assert form.action == "/logout/confirm"
        assert "post_logout_redirect_uri" not in form.fields  # no redirect after a failed check


def test_a_hint_from_another_session_needs_the_citizen_to_confirm(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax")
    earlier = sign_in_to(client, runtime, citizen, tax)
    current = sign_in(client, runtime, citizen)  # a newer session in the same browser
    page = logout(client, id_token_hint=earlier.tokens[tax.client_id]["id_token"])
    assert page.status_code == 200 and heading(page.text) == "Sign out"
    assert session_alive(runtime, current)


def test_without_hint_the_citizen_confirms_with_a_protected_form(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax")
    signed = sign_in_to(client, runtime, citizen, tax)
    page = logout(
        client,
        client_id=tax.client_id,
        post_logout_redirect_uri="https://tax.example.am/signed-out",
        state="abc",
    )
    assert page.status_code == 200
    assert "tax asks to sign you out." in page.text
    form = forms(page.text)[0]
    # Without the CSRF token (a third-party page posting the form): refused, nothing ended.
    forged = {k: v for k, v in form.fields.items() if k != "csrf_token"}
    refused = client.post(
        form.action, data={**forged, "decision": "logout"}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert session_alive(runtime, signed.sid)
    done = client.post(
        form.action, data={**form.fields, "decision": "logout"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == "https://tax.example.am/signed-out?state=abc"
    assert not session_alive(runtime, signed.sid)


def test_the_citizen_may_stay_signed_in(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    signed = sign_in_to(client, runtime, citizen)
    page = logout(client)
    form = forms(page.text)[0]
    stay = client.post(
        form.action, data={**form.fields, "decision": "stay"}, follow_redirects=False
    )
    assert stay.status_code == 303
    still = client.get(stay.headers["location"])
    assert heading(still.text) == "You are still signed in"
    assert session_alive(runtime, signed.sid)
    # ... and can still sign out from that page.
    button = forms(still.text)[0]
    ended = client.post(
        button.action, data={**button.fields, "decision": "logout"}, follow_redirects=False
    )
    assert heading(signed_out_page(client, ended).text) == "You have signed out"
    assert not session_alive(runtime, signed.sid)


def test_without_a_session_there_is_nothing_to_confirm(
    client: TestClient, runtime: Runtime
) -> None:
    eservice(runtime, "tax")
    page = signed_out_page(client, logout(client))
    assert page.status_code == 200 and heading(page.text) == "You have signed out"


def test_without_a_session_a_client_id_alone_redirects_nowhere(
    client: TestClient, runtime: Runtime
) -> None:
    """Anyone can write a link naming an e-service and one of its addresses (dynamic
    registration lets anyone register one): without a session to confirm and without a hint
    proving the e-service, the browser stays on our own page, in the citizen's language."""
    tax = eservice(runtime, "tax")
    for method in ("get", "post"):
        params = {
            "client_id": tax.client_id,
            "post_logout_redirect_uri": "https://tax.example.am/signed-out",
            "state": "st",
            "ui_locales": "hy",
        }
        if method == "get":
            response = logout(client, **params)
        else:
            response = client.post("/logout", data=params, follow_redirects=False)
        page = signed_out_page(client, response)
        assert page.status_code == 200
        assert '<html lang="hy">' in page.text and "Դուք դուրս եք եկել" in page.text
        assert "tax.example.am" not in page.text


def test_without_a_session_a_valid_hint_returns_to_the_eservice(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax")
    signed = sign_in_to(client, runtime, citizen, tax)
    hint = signed.tokens[tax.client_id]["id_token"]
    assert logout(client, id_token_hint=hint).status_code == 303  # the session ends here
    client.cookies.clear()  # ... and later, from a browser without any session:
    back = logout(
        client,
        id_token_hint=hint,
        post_logout_redirect_uri="https://tax.example.am/signed-out",
        state="st",
    )
    assert back.status_code == 303
    assert back.headers["location"] == "https://tax.example.am/signed-out?state=st"


def test_pages_follow_ui_locales(client: TestClient, runtime: Runtime, citizen: User) -> None:
    sign_in_to(client, runtime, citizen)
    page = logout(client, ui_locales="ru en")
    assert '<html lang="ru">' in page.text
    assert "Выйти" in page.text
    form = forms(page.text)[0]
    assert form.fields["ui_locales"] == "ru en"
    done = client.post(
        form.action, data={**form.fields, "decision": "logout"}, follow_redirects=False
    )
    assert '<html lang="ru">' in signed_out_page(client, done).text
    armenian = signed_out_page(client, logout(client, ui_locales="hy"))
    assert '<html lang="hy">' in armenian.text and "Դուք դուրս եք եկել" in armenian.text


def test_bad_requests_get_a_friendly_page(client: TestClient, runtime: Runtime) -> None:
    malformed = client.post(
        "/logout", content=b'{"x": 1}', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert "This sign-out request cannot be accepted" in malformed.text
    repeated = client.get("/logout?state=a&state=b&client_id=x", follow_redirects=False)
    assert repeated.status_code == 303
    huge = logout(client, id_token_hint="x" * 9000, state="s" * 5000)
    assert huge.status_code == 303
    tampered = client.get("/logout/done?o=not-a-sealed-value")
    assert tampered.status_code == 200 and heading(tampered.text) == "You have signed out"


def test_online_tokens_of_the_session_are_revoked_offline_ones_kept(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax", scope="openid profile offline_access")
    sid = sign_in(client, runtime, citizen)
    session_bound = tokens_for(client, Flow.new(tax, scope="openid profile"))
    offline = tokens_for(client, Flow.new(tax, scope="openid profile offline_access"))
    response = logout(client, id_token_hint=session_bound["id_token"])
    assert response.status_code == 303
    assert not session_alive(runtime, sid)
    assert refresh(client, tax, session_bound["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(client, tax, offline["refresh_token"]).status_code == 200
    location = urlsplit(response.headers["location"])
    assert "state" not in parse_qs(location.query)
