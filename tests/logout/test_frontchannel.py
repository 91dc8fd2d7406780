"""Front-channel logout: the signed-out page loads each e-service's front-channel page (with
`iss` and `sid`) in a hidden frame allowed by its own Content-Security-Policy, then continues."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from idp.cli import main
from idp.config import Settings
from idp.db.models import User
from idp.runtime import Runtime
from tests.logout.conftest import eservice, sign_in_to
from tests.signin.helpers import heading


def frame_sources(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('<iframe src="')[1:]]


def test_signed_out_page_loads_the_frontchannel_pages_then_continues(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(
        runtime, "tax", frontchannel_logout_uri="https://tax.example.am/fc-logout?from=idp"
    )
    health = eservice(runtime, "health", frontchannel_logout_uri="https://health.example.am/fc")
    quiet = eservice(runtime, "quiet")  # no front-channel page
    signed = sign_in_to(client, runtime, citizen, tax, health, quiet)
    response = client.get(
        "/logout",
        params={
            "id_token_hint": signed.tokens[quiet.client_id]["id_token"],
            "post_logout_redirect_uri": "https://quiet.example.am/signed-out",
            "state": "s1",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/logout/done?")
    assert signed.sid not in location and "tax.example.am" not in location  # sealed
    page = client.get(location)
    assert page.status_code == 200
    sources = sorted(frame_sources(page.text))
    assert len(sources) == 2
    for source, base in zip(
        sources,
        ["https://health.example.am/fc", "https://tax.example.am/fc-logout"],
        strict=True,
    ):
        parts = urlsplit(source.replace("&amp;", "&"))
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == base
        query = parse_qs(parts.query)
        assert query["iss"] == [runtime.settings.issuer]
        assert query["sid"] == [signed.sid]
    assert "from=idp" in sources[1]
    assert page.text.count("<iframe") == 2 and page.text.count(" hidden ") == 2
    policy = page.headers["content-security-policy"]
    assert "frame-src https://health.example.am https://tax.example.am" in policy
    assert "frame-ancestors 'none'" in policy
    # The way on, with a link that works without scripts (and a script that follows it).
    assert 'href="https://quiet.example.am/signed-out?state=s1"' in page.text
    assert "Continue to quiet" in page.text
    assert "/static/logout.js" in page.text
    assert client.get("/static/logout.js").status_code == 200
    # Without e-services to tell, the page allows no frames at all.
    assert "frame-src 'none'" in client.get("/logout/done").headers["content-security-policy"]


def test_frames_are_allowed_only_on_a_genuine_signed_out_page(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax", frontchannel_logout_uri="https://tax.example.am/fc")
    signed = sign_in_to(client, runtime, citizen, tax)
    response = client.get(
        "/logout",
        params={"id_token_hint": signed.tokens[tax.client_id]["id_token"]},
        follow_redirects=False,
    )
    location = response.headers["location"]
    tampered = location[:-6] + ("A" if location[-6] != "A" else "B") + location[-5:]
    page = client.get(tampered)
    assert "<iframe" not in page.text
    assert "frame-src 'none'" in page.headers["content-security-policy"]
    genuine = client.get(location)
    assert genuine.text.count("<iframe") == 1
    assert "Continue" not in genuine.text.split("<main", 1)[1]  # no redirect was asked for


def test_no_frames_when_the_browser_is_signed_in_again(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    tax = eservice(runtime, "tax", frontchannel_logout_uri="https://tax.example.am/fc")
    signed = sign_in_to(client, runtime, citizen, tax)
    location = client.get(
        "/logout",
        params={"id_token_hint": signed.tokens[tax.client_id]["id_token"]},
        follow_redirects=False,
    ).headers["location"]
    sign_in_to(client, runtime, citizen)
    page = client.get(location)
    assert heading(page.text) == "You are still signed in" and "<iframe" not in page.text


def test_clients_create_takes_a_frontchannel_logout_uri(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "clients",
            "create",
            "--name",
            "e-notary",
            "--redirect-uri",
            "https://notary.example.am/callback",
            "--frontchannel-logout-uri",
            "https://notary.example.am/fc-logout",
            "--json",
        ]
    )
    assert code == 0
    created = json.loads(capsys.readouterr().out)
    assert main(["clients", "show", created["client_id"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["frontchannel_logout_uri"] == "https://notary.example.am/fc-logout"
