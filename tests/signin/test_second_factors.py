"""The other second factors (recovery code, email code), enrolment and step-up."""

from __future__ import annotations

import re
import time

import httpx
import pyotp
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.auth import recovery
from idp.auth.throttle import Throttle, ThrottlePolicy
from idp.db.models import Event
from idp.runtime import Runtime
from tests.signin.helpers import (
    Browser,
    Citizen,
    add_citizen,
    add_client,
    error_text,
    events_of,
    interaction_row,
    outbox,
    resume_location,
)


def test_recovery_code_signs_in_once(browser: Browser, runtime: Runtime) -> None:
    citizen = add_citizen(runtime, totp=False)
    first = browser.start()
    # Enrol first: the recovery codes are shown once, after the app is confirmed.
    enrol = browser.follow(browser.sign_in_password(first, citizen.username, citizen.password))
    secret = re.search(r'id="secret">([A-Z2-7 ]+)<', enrol.text)
    assert secret
    citizen.totp_secret = secret.group(1).replace(" ", "")
    codes_page = browser.follow(browser.submit(enrol, {"code": citizen.code()}))
    codes = re.findall(r"<li>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</li>", codes_page.text)
    assert len(codes) == 10
    assert browser.submit(codes_page, {}).headers["location"] == resume_location(first)

    second = browser.start(force_login=True)
    code_page = browser.follow(browser.sign_in_password(second, "anahit", citizen.password))
    recovery_page = browser.page(f"/login/{second}/recovery")
    assert "Recovery code" in recovery_page.text or "recovery" in recovery_page.text.lower()
    done = browser.submit(recovery_page, {"code": codes[0].upper()})
    assert done.headers["location"] == resume_location(second)
    assert code_page.status_code == 200

    third = browser.start(force_login=True)
    browser.sign_in_password(third, "anahit", citizen.password)
    again = browser.submit(browser.page(f"/login/{third}/recovery"), {"code": codes[0]})
    assert again.headers["location"] == f"/login/{third}/recovery?error=code"
    assert [e.outcome for e in events_of(runtime, "auth.recovery")] == ["success", "failure"]


def test_email_code_says_where_it_went_and_signs_in(browser: Browser, runtime: Runtime) -> None:
    citizen = add_citizen(runtime)
    interaction_id = browser.start()
    code_page = browser.follow(
        browser.sign_in_password(interaction_id, citizen.username, citizen.password)
    )
    sent = browser.submit(code_page, {}, action=f"/login/{interaction_id}/email/send")
    assert sent.headers["location"] == f"/login/{interaction_id}/email"
    email_page = browser.follow(sent)
    assert "a***@example.am" in email_page.text
    messages = outbox(runtime)
    assert len(messages) == 1 and messages[0]["to"] == citizen.email
    code = re.search(r"\b(\d{6})\b", messages[0]["text"])
    assert code

    resend = browser.submit(email_page, {}, action=f"/login/{interaction_id}/email/send")
    assert resend.headers["location"].startswith(f"/login/{interaction_id}/email?error=cooldown")
    assert len(outbox(runtime)) == 1

    wrong = browser.submit(email_page, {"code": "000000" if code.group(1) != "000000" else "1"})
    assert wrong.headers["location"] == f"/login/{interaction_id}/email?error=code"
    done = browser.submit(email_page, {"code": code.group(1)})
    assert done.headers["location"] == resume_location(interaction_id)
    assert [e.outcome for e in events_of(runtime, "auth.email_otp")] == ["failure", "success"]


def test_enrolment_at_first_sign_in(browser: Browser, runtime: Runtime) -> None:
    citizen = add_citizen(runtime, totp=False)
    interaction_id = browser.start()
    after_password = browser.sign_in_password(interaction_id, citizen.username, citizen.password)
    assert after_password.headers["location"] == f"/login/{interaction_id}/enrol"
    enrol = browser.follow(after_password)
    assert "<svg" in enrol.text and 'role="img"' in enrol.text
    key = re.search(r'id="secret">([A-Z2-7 ]+)<', enrol.text)
    assert key
    # Reloading shows the same key: the app scanned first keeps working.
    assert key.group(0) in browser.page(f"/login/{interaction_id}/enrol").text
    citizen.totp_secret = key.group(1).replace(" ", "")

    wrong = browser.submit(enrol, {"code": "123456" if citizen.code() != "123456" else "654321"})
    assert wrong.headers["location"] == f"/login/{interaction_id}/enrol?error=code"
    assert browser.session_cookie() is None
    confirmed = browser.submit(enrol, {"code": citizen.code()})
    assert confirmed.headers["location"] == f"/login/{interaction_id}/recovery-codes"
    assert browser.session_cookie() is None  # not before the codes are seen

    codes_page = browser.follow(confirmed)
    assert 'download="recovery-codes.txt"' in codes_page.text
    assert 'href="data:text/plain;charset=utf-8,' in codes_page.text
    done = browser.submit(codes_page, {})
    assert done.headers["location"] == resume_location(interaction_id)
    assert browser.session_cookie()
    assert [e.outcome for e in events_of(runtime, "auth.totp_enrol")] == ["failure", "success"]


def shown_seed(page: httpx.Response) -> str:
    key = re.search(r'id="secret">([A-Z2-7 ]+)<', page.text)
    assert key, page.text
    return key.group(1).replace(" ", "")


def code_of(seed: str, offset_steps: int = 0) -> str:
    return str(pyotp.TOTP(seed).at(time.time() + 30 * offset_steps))


def test_each_sign_in_sets_up_its_own_seed(
    browser: Browser, runtime: Runtime, client: TestClient
) -> None:
    """Someone who knows the password of an account without an app, signing in elsewhere, sees
    another seed than the citizen, and cannot make theirs the citizen's app from here."""
    citizen = add_citizen(runtime, totp=False)
    other = Browser(TestClient(client.app, base_url=runtime.settings.issuer), runtime)
    a = other.start()
    enrol_a = other.follow(other.sign_in_password(a, "anahit", citizen.password))
    seed_a = shown_seed(enrol_a)
    assert seed_a == shown_seed(other.page(f"/login/{a}/enrol"))  # reloaded: the same seed

    b = browser.start()
    enrol_b = browser.follow(browser.sign_in_password(b, "anahit", citizen.password))
    seed_b = shown_seed(enrol_b)
    assert seed_b != seed_a and seed_a not in enrol_b.text.replace(" ", "")
    assert seed_b == shown_seed(browser.page(f"/login/{b}/enrol"))

    # A code of A's seed does nothing in B's sign-in.
    planted = browser.submit(enrol_b, {"code": code_of(seed_a)})
    assert planted.headers["location"] == f"/login/{b}/enrol?error=code"
    confirmed = browser.submit(enrol_b, {"code": code_of(seed_b)})
    assert confirmed.headers["location"] == f"/login/{b}/recovery-codes"

    # A's sign-in cannot set up its seed any more: the account has an app, B's.
    late = other.submit(enrol_a, {"code": code_of(seed_a, 1)})
    assert late.headers["location"] == f"/login/{a}/totp"
    asked = other.page(late.headers["location"])
    refused = other.submit(asked, {"code": code_of(seed_a, 1)})
    assert refused.headers["location"] == f"/login/{a}/totp?error=code"
    accepted = other.submit(asked, {"code": code_of(seed_b, 1)})
    assert accepted.headers["location"] == resume_location(a)


def test_step_up_asks_only_for_the_missing_factor(browser: Browser, runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"require_second_factor": False})
    citizen = add_citizen(runtime, totp=False)
    low = browser.start()
    done = browser.sign_in_password(low, citizen.username, citizen.password)
    assert done.headers["location"] == resume_location(low)
    assert interaction_row(runtime, low).amr == ["pwd"]
    first_cookie = browser.session_cookie()

    substantial = browser.start(required_acr="substantial")
    step = browser.get(f"/login/{substantial}")
    assert step.headers["location"] == f"/login/{substantial}/enrol"  # no password asked
    enrol = browser.follow(step)
    key = re.search(r'id="secret">([A-Z2-7 ]+)<', enrol.text)
    assert key
    citizen.totp_secret = key.group(1).replace(" ", "")
    codes = browser.follow(browser.submit(enrol, {"code": citizen.code()}))
    finished = browser.submit(codes, {})
    assert finished.headers["location"] == resume_location(substantial)
    assert browser.session_cookie() != first_cookie  # a new session id after step-up
    assert interaction_row(runtime, substantial).amr == ["pwd", "otp", "mfa"]
    assert events_of(runtime, "session.ended")[0].data["reason"] == "reauthenticated"

    # The stronger session now satisfies a request at once.
    later = browser.start(required_acr="substantial")
    assert browser.get(f"/login/{later}").headers["location"] == resume_location(later)


def test_force_login_asks_again(browser: Browser, runtime: Runtime) -> None:
    citizen = add_citizen(runtime)
    first = browser.start()
    browser.sign_in_password(first, citizen.username, citizen.password)
    browser.submit(browser.page(f"/login/{first}/totp"), {"code": citizen.code()})
    second = browser.start(force_login=True)
    page = browser.page(f"/login/{second}")
    assert 'name="password"' in page.text
    code_page = browser.follow(
        browser.submit(page, {"username": "anahit", "password": citizen.password})
    )
    done = browser.submit(code_page, {"code": citizen.code(1)})
    assert done.headers["location"] == resume_location(second)


# Input that cannot be a code: a typing mistake, not a guess -------------------------------

STRICT = ThrottlePolicy(delay_after=1, first_delay=60, max_delay=60)  # one failure: a minute


def _signed_in_with_password(
    client: TestClient, runtime: Runtime, *, totp: bool = True, locale: str = "en"
) -> tuple[Browser, Citizen, str]:
    """After the password step, under throttle rules where one counted failure would make
    the next attempt wait a minute."""
    runtime.throttle = Throttle(STRICT)
    add_client(runtime)
    browser = Browser(client, runtime)
    citizen = add_citizen(runtime, totp=totp)
    interaction_id = browser.start(ui_locales=locale)
    browser.sign_in_password(interaction_id, citizen.username, citizen.password)
    return browser, citizen, interaction_id


def _failures(runtime: Runtime) -> list[Event]:
    with runtime.db.read() as db:
        return list(db.scalars(select(Event).where(Event.outcome == "failure")))


def test_letters_in_an_app_code_ask_for_the_digits_and_count_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    browser, citizen, interaction_id = _signed_in_with_password(client, runtime, locale="ru")
    here = f"/login/{interaction_id}/totp"
    for typed in ("12345a", "I23456", "12345", "1234567", "один"):
        answer = browser.submit(browser.page(here), {"code": typed})
        assert answer.headers["location"] == f"{here}?error=format", typed
    told = error_text(browser.follow(answer).text)
    assert "Код состоит из 6 цифр" in told
    assert _failures(runtime) == []
    code = citizen.code()
    done = browser.submit(browser.page(here), {"code": f"{code[:3]} {code[3:]}"})
    assert done.headers["location"] == resume_location(interaction_id)


def test_letters_in_an_emailed_code_use_up_none_of_its_attempts(
    client: TestClient, runtime: Runtime
) -> None:
    browser, _, interaction_id = _signed_in_with_password(client, runtime, locale="hy")
    here = f"/login/{interaction_id}/email"
    browser.submit(browser.page(here), {}, action=f"{here}/send")
    code = re.search(r"\b(\d{6})\b", outbox(runtime)[-1]["text"])
    assert code
    for _ in range(6):  # more than the code's five attempts
        answer = browser.submit(browser.page(here), {"code": "abc-def"})
        assert answer.headers["location"] == f"{here}?error=format"
    assert "Կոդը 6 թվանշան է" in error_text(browser.follow(answer).text)
    assert _failures(runtime) == []
    done = browser.submit(browser.page(here), {"code": code.group(1)})
    assert done.headers["location"] == resume_location(interaction_id)


def test_letters_in_the_first_code_of_a_new_app_count_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    browser, _, interaction_id = _signed_in_with_password(client, runtime, totp=False)
    here = f"/login/{interaction_id}/enrol"
    enrol = browser.page(here)
    wrong = browser.submit(enrol, {"code": "abcdef"})
    assert wrong.headers["location"] == f"{here}?error=format"
    assert "A code is 6 digits" in error_text(browser.follow(wrong).text)
    assert _failures(runtime) == []
    seed = shown_seed(browser.page(here))
    confirmed = browser.submit(enrol, {"code": code_of(seed)})
    assert confirmed.headers["location"] == f"/login/{interaction_id}/recovery-codes"


def test_a_recovery_code_outside_its_alphabet_counts_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    browser, citizen, interaction_id = _signed_in_with_password(client, runtime)
    with runtime.db.transaction() as db:
        saved = recovery.generate(db, citizen.id)
    here = f"/login/{interaction_id}/recovery"
    # Too short, a letter the codes never use (u), letters of another alphabet.
    for typed in ("abcd-efgh", "uuuu-uuuu-uuuu", "абвг-дж3з-ийкл"):
        answer = browser.submit(browser.page(here), {"code": typed})
        assert answer.headers["location"] == f"{here}?error=format", typed
    assert "12 letters and digits" in error_text(browser.follow(answer).text)
    assert _failures(runtime) == []
    done = browser.submit(browser.page(here), {"code": saved[0].upper()})
    assert done.headers["location"] == resume_location(interaction_id)
