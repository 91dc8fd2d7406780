"""The account pages and "this wasn't me", driven over HTTP through the real sign-in pages."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.auth.throttle import Throttle, ThrottlePolicy
from idp.db.models import SecurityReport, SsoSession, TotpCredential, User
from idp.runtime import Runtime
from tests.admin.conftest import Console
from tests.protocol.conftest import Flow, redeem, register, sign_in
from tests.signin.helpers import Citizen, add_citizen, forms

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def use_eservice(console: Console, who: Citizen, runtime: Runtime) -> tuple[str, str]:
    """Sign in to a (consent-asking) e-service and read userinfo; returns its id and token."""
    service = register(runtime, name="Land registry")
    flow = Flow.new(service)
    response = console.get("/authorize", params=flow.params)
    response = console.sign_in(who, response)
    response = console.follow(response)  # resume, then the consent page
    assert response.status_code == 200 and "Land registry" in response.text
    action = urlsplit(str(response.url)).path
    response = console.post_form(response, action, {"decision": "allow"})
    location = response.headers["location"]
    assert location.startswith(service.redirect_uri), location
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = redeem(console.client, flow, code).json()
    claims = console.client.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert claims.status_code == 200
    return service.client_id, tokens["access_token"]


def test_account_pages_and_this_was_not_me(
    client: TestClient, runtime: Runtime, console: Console, admin: Citizen
) -> None:
    client.headers["user-agent"] = FIREFOX
    who = add_citizen(runtime, "narek", email="narek@example.am")
    client_id, access_token = use_eservice(console, who, runtime)

    home = console.get("/account")
    assert home.status_code == 200, home.text  # the e-service sign-in's session serves it
    assert "Your identity" in home.text and "narek" in home.text

    history = console.get("/account/history")
    assert "Land registry" in history.text and "Firefox on Linux" in history.text
    exported = console.get("/account/history.json").json()
    kinds = [e["type"] for e in exported["entries"]]
    assert {"signin.completed", "consent.granted", "userinfo.released"} <= set(kinds)
    signin = next(e for e in exported["entries"] if e["type"] == "signin.completed")
    assert signin["e_service"] == "Land registry" and signin["acr"] == "substantial"
    assert "email" in signin["claims"] and signin["single_sign_on"] is False

    services = console.get("/account/services")
    assert "Land registry" in services.text and "Email" in services.text

    sessions = console.get("/account/sessions")
    assert "Firefox on Linux" in sessions.text and "This device" in sessions.text
    assert "Firefox на Linux" in console.get("/account/sessions?lang=ru").text
    assert "Firefox, Linux" in console.get("/account/history?lang=hy").text
    console.get("/account?lang=en")

    # "This wasn't me" on the sign-in, confirmed: everything ends, a report is filed.
    not_me = f"/account/history/{signin['id']}/not-me"
    assert f'href="{not_me}"' in history.text
    reported = console.post_form(console.get(not_me), not_me)
    assert reported.status_code == 303 and reported.headers["location"] == "/account/secured"
    assert "secured" in console.get("/account/secured").text
    again = console.get("/account")
    assert again.status_code == 303 and again.headers["location"].startswith("/login/")
    revoked = console.client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert revoked.status_code == 401
    with runtime.db.transaction() as db:
        user = db.scalar(select(User).where(User.username == "narek"))
        assert user is not None and user.must_change_password
        live = db.scalars(
            select(SsoSession).where(SsoSession.user_id == user.id, SsoSession.ended_at.is_(None))
        ).all()
        assert live == []
        (report,) = db.scalars(select(SecurityReport)).all()
        assert report.client_id == client_id and report.grants_revoked == 1

    # The administrators see it.
    console.client.cookies.clear()
    reports = console.open(admin, "/admin/security-reports")
    assert reports.status_code == 200 and "narek" in reports.text


def test_sign_in_to_account_change_password_and_revoke(
    client: TestClient, runtime: Runtime, console: Console
) -> None:
    who = add_citizen(runtime, "lilit", email="lilit@example.am")
    response = console.get("/account/password")
    assert response.status_code == 303 and response.headers["location"].startswith("/login/")
    page = console.follow(console.sign_in(who, response))
    assert page.status_code == 200 and str(page.url).endswith("/account/password")

    wrong = console.post_form(
        page, "/account/password", {"current": "not-it", "password": "x", "confirm": "x"}
    )
    assert wrong.headers["location"].endswith("error=current")
    assert "current password is not correct" in console.follow(wrong).text
    new = "granite-lantern-over-sevan"
    changed = console.post_form(
        page, "/account/password", {"current": who.password, "password": new, "confirm": new}
    )
    assert changed.headers["location"] == "/account?done=password"
    assert "Your password was changed" in console.follow(changed).text

    # Recovery codes need a recent sign-in; this one is.
    new_codes = "/account/security/recovery-codes"
    codes = console.post_form(console.get(new_codes), new_codes)
    assert codes.status_code == 200
    assert len(re.findall(r"<li>[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}</li>", codes.text)) == 10

    # Sign out everywhere.
    everywhere = "/account/sessions/end-all"
    out = console.post_form(console.get(everywhere), everywhere)
    assert out.headers["location"] == "/account/signed-out"
    assert console.get("/account").status_code == 303


def test_not_me_on_someone_elses_entry_is_not_found(
    client: TestClient, runtime: Runtime, console: Console
) -> None:
    who = add_citizen(runtime, "aram", email="aram@example.am")
    page = console.open(who, "/account/security")
    assert page.status_code == 200
    assert console.get("/account/history/1/not-me").status_code == 404
    lost = console.client.post(
        "/account/history/1/not-me",  # the administrator-made event of another account
        data={"csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert lost.status_code == 404
    forged = console.client.post("/account/sessions/end-all", follow_redirects=False)
    assert forged.status_code == 403  # no CSRF token: nothing happens
    with runtime.db.transaction() as db:
        assert db.scalars(select(SecurityReport)).all() == []
    assert console.get("/account").status_code == 200


def _csrf(html: str) -> str:
    for form in forms(html):
        if "csrf_token" in form.fields:
            return form.fields["csrf_token"]
    raise AssertionError("no CSRF token")


def test_a_new_app_is_set_up_only_in_the_session_that_showed_its_seed(
    client: TestClient, runtime: Runtime
) -> None:
    who = add_citizen(runtime, "mariam", email="mariam@example.am")
    here, elsewhere = Console(client, runtime), Console(new_browser(client), runtime)
    for browser in (here, elsewhere):
        sign_in(browser.client, runtime, who)  # type: ignore[arg-type]

    def setup_page(browser: Console) -> tuple[httpx.Response, str, str]:
        page = browser.get("/account/security/totp")
        assert page.status_code == 200, page.text
        seed = re.search(r'id="secret">([A-Z2-7 ]+)</p>', page.text)
        [form] = [f for f in forms(page.text) if f.action == "/account/security/totp"]
        assert seed
        return page, seed.group(1).replace(" ", ""), form.fields["sealed"]

    _, seed_elsewhere, sealed_elsewhere = setup_page(elsewhere)
    page, seed_here, _ = setup_page(here)
    assert seed_here != seed_elsewhere

    # The seed shown to the other browser, and a code of it, sent from this one: refused.
    planted = here.post_form(
        page,
        "/account/security/totp",
        {"sealed": sealed_elsewhere, "code": pyotp.TOTP(seed_elsewhere).now()},
    )
    assert planted.headers["location"] == "/account/security/totp?error=expired"
    with runtime.db.read() as db:
        app = db.scalar(select(TotpCredential).where(TotpCredential.user_id == who.id))
        assert app is not None and runtime.secrets.decrypt(app.secret_encrypted) == who.totp_secret

    done = here.post_form(page, "/account/security/totp", {"code": pyotp.TOTP(seed_here).now()})
    assert done.headers["location"] == "/account/security?done=totp"
    with runtime.db.read() as db:
        app = db.scalar(select(TotpCredential).where(TotpCredential.user_id == who.id))
        assert app is not None and runtime.secrets.decrypt(app.secret_encrypted) == seed_here


def new_browser(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url=str(client.base_url))


def test_letters_in_a_new_apps_code_ask_for_the_digits_and_count_nothing(
    client: TestClient, runtime: Runtime, console: Console
) -> None:
    runtime.throttle = Throttle(ThrottlePolicy(delay_after=1, first_delay=60, max_delay=60))
    who = add_citizen(runtime, "nare", email="nare@example.am")
    page = console.open(who, "/account/security/totp")
    typo = console.post_form(page, "/account/security/totp", {"code": "l23 45b"})
    assert typo.headers["location"] == "/account/security/totp?error=format"
    assert "A code is 6 digits" in console.follow(typo).text
    with runtime.db.read() as db:
        assert runtime.throttle.state(db, who.id) == "ok"
    wrong = console.post_form(page, "/account/security/totp", {"code": "000000"})
    assert wrong.headers["location"] == "/account/security/totp?error=code"
    with runtime.db.read() as db:
        assert runtime.throttle.state(db, who.id) == "delayed"
