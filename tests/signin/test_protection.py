"""Throttling, enumeration, replayed codes, password rehashing."""

from __future__ import annotations

import threading

import httpx
from argon2 import PasswordHasher
from sqlalchemy import update
from starlette.testclient import TestClient

from idp.auth.throttle import Throttle, ThrottlePolicy
from idp.db.models import User
from idp.runtime import Runtime
from idp.services import users as user_service
from tests.signin.helpers import (
    Browser,
    Citizen,
    add_citizen,
    add_client,
    error_text,
    events_of,
    resume_location,
    user_row,
    wrong_code,
)


def test_unknown_user_and_wrong_password_get_the_same_answer(
    browser: Browser, runtime: Runtime
) -> None:
    add_citizen(runtime)
    interaction_id = browser.start()
    unknown = browser.sign_in_password(interaction_id, "nobody", "whatever it is")
    wrong = browser.sign_in_password(interaction_id, "anahit", "whatever it is")
    assert unknown.status_code == wrong.status_code == 303
    assert unknown.headers["location"] == wrong.headers["location"]
    unknown_page = browser.page(unknown.headers["location"])
    wrong_page = browser.page(wrong.headers["location"])
    assert error_text(unknown_page.text) == error_text(wrong_page.text) != ""
    reasons = [e.data["reason"] for e in events_of(runtime, "auth.password")]
    assert reasons == ["unknown_user", "wrong_password"]
    for event in events_of(runtime, "auth.password"):
        assert "whatever" not in str(event.data)


def test_lockout_same_answer_then_admin_unlock(client: TestClient, runtime: Runtime) -> None:
    runtime.throttle = Throttle(ThrottlePolicy(delay_after=100, lock_after=3, max_failures=5))
    browser = Browser(client, runtime)
    from tests.signin.helpers import add_client

    add_client(runtime)
    citizen = add_citizen(runtime)
    interaction_id = browser.start()
    for _ in range(5):
        browser.sign_in_password(interaction_id, "anahit", "not the password")
    locked = browser.sign_in_password(interaction_id, "anahit", citizen.password)
    assert locked.headers["location"] == f"/login/{interaction_id}?error=credentials"
    assert events_of(runtime, "auth.password")[-1].data["reason"] == "account_locked"

    with runtime.db.transaction() as db:
        user_service.unlock(db, "anahit", actor="helpdesk")
    unlocked = browser.sign_in_password(interaction_id, "anahit", citizen.password)
    assert unlocked.headers["location"] == f"/login/{interaction_id}/totp"


def test_a_totp_code_is_accepted_once(browser: Browser, runtime: Runtime) -> None:
    citizen = add_citizen(runtime)
    first = browser.start()
    browser.sign_in_password(first, citizen.username, citizen.password)
    code = citizen.code()
    ok = browser.submit(browser.page(f"/login/{first}/totp"), {"code": code})
    assert ok.headers["location"] == resume_location(first)

    second = browser.start(force_login=True)
    browser.sign_in_password(second, citizen.username, citizen.password)
    replay = browser.submit(browser.page(f"/login/{second}/totp"), {"code": code})
    assert replay.headers["location"] == f"/login/{second}/totp?error=code"


def test_two_simultaneous_submits_of_one_code_sign_in_once(
    browser: Browser, runtime: Runtime
) -> None:
    citizen = add_citizen(runtime)
    interaction_id = browser.start()
    browser.sign_in_password(interaction_id, citizen.username, citizen.password)
    page = browser.page(f"/login/{interaction_id}/totp")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    data = {"csrf_token": token, "code": citizen.code()}
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def submit() -> None:
        barrier.wait()
        answers.append(
            browser.client.post(f"/login/{interaction_id}/totp", data=data, follow_redirects=False)
        )

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    locations = [a.headers.get("location", str(a.status_code)) for a in answers]
    assert resume_location(interaction_id) in locations
    # The code counted once: one success, one session (the other submit was refused, or found
    # the step already done).
    assert [e.outcome for e in events_of(runtime, "auth.otp")].count("success") == 1
    assert len(events_of(runtime, "session.created")) == 1


def test_password_is_rehashed_when_parameters_change(browser: Browser, runtime: Runtime) -> None:
    citizen = add_citizen(runtime)
    weak = PasswordHasher(time_cost=1, memory_cost=19456, parallelism=1).hash(citizen.password)
    with runtime.db.transaction() as db:
        db.execute(update(User).where(User.id == citizen.id).values(password_hash=weak))
    interaction_id = browser.start()
    after = browser.sign_in_password(interaction_id, citizen.username, citizen.password)
    assert after.headers["location"] == f"/login/{interaction_id}/totp"
    stored = user_row(runtime, citizen.id).password_hash
    settings = runtime.settings
    costs = f"m={settings.password_hash_memory_kib},t={settings.password_hash_iterations},p=1"
    assert stored != weak and stored and costs in stored


def _after_failures(
    client: TestClient, runtime: Runtime, locale: str, **rules: int
) -> tuple[Browser, Citizen, str]:
    """Under these throttle rules: a wrong password, the right one, then a wrong code; the
    next code is about to be entered. Returns the browser, the citizen and the sign-in."""
    runtime.throttle = Throttle(ThrottlePolicy(**rules))
    add_client(runtime)
    browser = Browser(client, runtime)
    citizen = add_citizen(runtime)
    interaction_id = browser.start(ui_locales=locale)
    browser.sign_in_password(interaction_id, citizen.username, "not the password")
    browser.sign_in_password(interaction_id, citizen.username, citizen.password)
    _enter_code(browser, interaction_id, wrong_code(citizen))
    return browser, citizen, interaction_id


def _enter_code(browser: Browser, interaction_id: str, code: str) -> httpx.Response:
    return browser.submit(browser.page(f"/login/{interaction_id}/totp"), {"code": code})


def test_after_wrong_passwords_the_code_page_speaks_of_failed_attempts(
    client: TestClient, runtime: Runtime
) -> None:
    """The account's count holds wrong passwords too: one wrong code after them is not "too
    many wrong codes"."""
    browser, citizen, interaction_id = _after_failures(
        client, runtime, "en", delay_after=2, first_delay=60, max_delay=60
    )
    refused = _enter_code(browser, interaction_id, citizen.code())
    assert refused.headers["location"].startswith(f"/login/{interaction_id}/totp?error=throttled")
    told = error_text(browser.follow(refused).text)
    assert "Too many failed attempts to sign in to this account. Wait" in told
    assert "wrong codes" not in told


def test_a_code_page_refused_for_the_network_says_so(client: TestClient, runtime: Runtime) -> None:
    browser, citizen, interaction_id = _after_failures(
        client, runtime, "ru", delay_after=100, ip_max_failures=3
    )
    _enter_code(browser, interaction_id, wrong_code(citizen))
    refused = _enter_code(browser, interaction_id, citizen.code())
    assert "error=ip_limited" in refused.headers["location"]
    assert "Слишком много попыток из вашей сети" in error_text(browser.follow(refused).text)


def test_a_locked_account_is_told_as_such_on_the_code_page_only(
    client: TestClient, runtime: Runtime
) -> None:
    browser, citizen, interaction_id = _after_failures(
        client, runtime, "en", delay_after=100, lock_after=2
    )
    refused = _enter_code(browser, interaction_id, citizen.code())
    assert refused.headers["location"] == f"/login/{interaction_id}/totp?error=locked"
    told = error_text(browser.follow(refused).text)
    assert "Too many failed attempts to sign in to this account" in told
    # On the password page the same lock answers exactly like a wrong password.
    other = browser.start(force_login=True, ui_locales="en")
    locked = browser.sign_in_password(other, citizen.username, citizen.password)
    wrong = browser.sign_in_password(other, "nobody", "not the password")
    assert locked.headers["location"] == wrong.headers["location"]
    told = error_text(browser.follow(locked).text)
    assert told == error_text(browser.follow(wrong).text)
    assert "could not sign you in" in told
