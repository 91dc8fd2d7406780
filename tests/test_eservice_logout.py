"""The demo e-services against a real provider: only a valid logout token from the provider
ends sessions, and only those it names; a signed-in citizen's claims are shown as JSON."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient

from clients.common.store import SessionStore
from clients.common.tokens import BACKCHANNEL_EVENT
from idp.oauth.keys import KeyRing
from tests.demo_stack import Stack, start_stack
from tests.e2e.browser import sign_in_and_consent
from tests.e2e.conftest import Provider


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, _migrated_sqlite: Path) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("logout")
    shutil.copy(_migrated_sqlite, folder / "idp.db")
    running = start_stack(folder, f"sqlite:///{folder / 'idp.db'}")
    yield running
    running.stop()


@pytest.fixture
def elicensing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[TestClient]:
    """e-licensing in this process, with a store of its own, talking to the real provider."""
    from clients.elicensing.app import create_app

    for name, value in stack.elicensing.env.items():
        if name.startswith("ELICENSING_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("ELICENSING_DATA_DIR", str(tmp_path / "rp"))
    with TestClient(create_app(), base_url=stack.elicensing.url) as http:
        yield http


def logout_token(stack: Stack, *, typ: str = "logout+jwt", **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": stack.provider.url,
        "aud": "e-licensing",
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "sid": "sid-1",
        "sub": "citizen-1",
        "events": {BACKCHANNEL_EVENT: {}},
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    keyring = KeyRing(stack.settings.keys_dir, max_token_lifetime=3600)
    keyring.load()
    return keyring.sign(claims, alg="RS256", typ=typ)


def store_of(http: TestClient) -> SessionStore:
    store: SessionStore = http.app.state.store  # type: ignore[attr-defined]
    return store


def sessions(http: TestClient) -> dict[str, str]:
    store = store_of(http)
    return {
        "a": store.create(sub="citizen-1", sid="sid-1", data={}),
        "b": store.create(sub="citizen-1", sid="sid-2", data={}),
        "c": store.create(sub="citizen-2", sid="sid-3", data={}),
    }


def alive(http: TestClient, keys: dict[str, str]) -> set[str]:
    return {name for name, key in keys.items() if store_of(http).get(key) is not None}


def test_logout_token_ends_the_session_it_names(elicensing: TestClient, stack: Stack) -> None:
    keys = sessions(elicensing)
    token = logout_token(stack)
    answer = elicensing.post("/backchannel-logout", data={"logout_token": token})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert alive(elicensing, keys) == {"b", "c"}
    # The same token again is a replay.
    again = elicensing.post("/backchannel-logout", data={"logout_token": token})
    assert again.status_code == 400


def test_logout_token_by_subject_ends_all_of_its_sessions(
    elicensing: TestClient, stack: Stack
) -> None:
    keys = sessions(elicensing)
    answer = elicensing.post(
        "/backchannel-logout", data={"logout_token": logout_token(stack, sid=None)}
    )
    assert answer.status_code == 200
    assert alive(elicensing, keys) == {"c"}


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("wrong typ", {"typ": "JWT"}),
        ("has a nonce", {"nonce": "n"}),
        ("other audience", {"aud": "e-justice"}),
        ("other issuer", {"iss": "https://elsewhere.example"}),
        ("expired", {"iat": int(time.time()) - 600, "exp": int(time.time()) - 300}),
        ("no events", {"events": None}),
        ("other event", {"events": {"https://example.org/other": {}}}),
        ("no sid or sub", {"sid": None, "sub": None}),
        ("no jti", {"jti": None}),
    ],
)
def test_invalid_logout_token_is_refused(
    elicensing: TestClient, stack: Stack, case: str, changes: dict[str, Any]
) -> None:
    keys = sessions(elicensing)
    answer = elicensing.post(
        "/backchannel-logout", data={"logout_token": logout_token(stack, **changes)}
    )
    assert answer.status_code == 400, case
    assert answer.json()["error"] == "invalid_request"
    assert alive(elicensing, keys) == {"a", "b", "c"}


def test_logout_token_signed_by_another_key_is_refused(
    elicensing: TestClient, stack: Stack
) -> None:
    keys = sessions(elicensing)
    forger = RSAKey.generate_key(2048, auto_kid=True)
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "RS256", "kid": forger.kid, "typ": "logout+jwt"},
        {
            "iss": stack.provider.url,
            "aud": "e-licensing",
            "iat": now,
            "exp": now + 120,
            "jti": uuid.uuid4().hex,
            "sid": "sid-1",
            "events": {BACKCHANNEL_EVENT: {}},
        },
        forger,
    )
    answer = elicensing.post("/backchannel-logout", data={"logout_token": forged})
    assert answer.status_code == 400
    missing = elicensing.post("/backchannel-logout", data={})
    assert missing.status_code == 400
    assert alive(elicensing, keys) == {"a", "b", "c"}


def test_sign_out_form_needs_its_token(elicensing: TestClient) -> None:
    answer = elicensing.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert answer.status_code == 400


def test_ejustice_publishes_only_its_public_key_and_keeps_it(stack: Stack) -> None:
    import httpx

    first = httpx.get(f"{stack.ejustice.url}/jwks.json").json()
    assert [sorted(k) for k in first["keys"]] == [["alg", "e", "kid", "kty", "n", "use"]]
    stack.ejustice.stop()
    stack.ejustice.start()
    assert httpx.get(f"{stack.ejustice.url}/jwks.json").json() == first


def test_a_signed_in_citizen_sees_the_claims_as_json_and_the_times_as_dates(
    elicensing: TestClient, stack: Stack
) -> None:
    creds = stack.creds
    provider = Provider(
        stack.provider.url,
        creds.client_id,
        creds.client_secret,
        creds.username,
        creds.password,
        creds.totp_secret,
    )
    start = elicensing.get("/login", follow_redirects=False)
    callback = sign_in_and_consent(
        provider, start.headers["location"], back_to=stack.elicensing.url
    )
    assert elicensing.get(callback, follow_redirects=False).status_code == 303
    home = elicensing.get("/").text

    userinfo = _json_block(home, "userinfo")
    assert userinfo["email"] == "demo.citizen@example.org"
    assert userinfo["email_verified"] is False  # shown as JSON's false, not Python's False
    id_token = _json_block(home, "id-token")
    assert id_token["amr"] == ["pwd", "otp", "mfa"]
    assert ">False<" not in home and "['" not in home
    # The time claims, seconds since 1970 in the JSON, are also shown as ISO 8601 dates.
    shown = dict(re.findall(r"<dt>(\w+)</dt><dd><time datetime=\"([^\"]+)\">", home))
    for name in ("iat", "exp", "auth_time"):
        assert shown[name] == datetime.fromtimestamp(id_token[name], UTC).isoformat()
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"
    assert re.search(rf'Signed in at</dt><dd><time datetime="{iso}">', home)


def _json_block(html: str, block_id: str) -> Any:
    """The JSON shown in the page's `<pre id=block_id>`."""
    found = re.search(rf'<pre [^>]*id="{block_id}"[^>]*><code>(.*?)</code></pre>', html, re.S)
    assert found, f"no JSON block {block_id}"
    return json.loads(unescape(found.group(1)))
