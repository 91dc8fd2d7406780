"""Password reset by an emailed link, and a password change required by an administrator."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from idp.auth import passwords
from idp.db.models import PasswordReset
from idp.runtime import Runtime
from tests.signin.helpers import (
    Browser,
    add_citizen,
    events_of,
    outbox,
    resume_location,
    user_row,
)

NEW_PASSWORD = "blue lantern over quiet river"


def _reset_link(runtime: Runtime) -> str:
    messages = outbox(runtime)
    assert len(messages) == 1
    link = re.search(r"http://localhost:8000(/password/reset/\S+)", messages[0]["text"])
    assert link
    return link.group(1)


def test_reset_by_email_link_then_sign_in_still_needs_the_code(
    browser: Browser, runtime: Runtime
) -> None:
    citizen = add_citizen(runtime)
    first = browser.start()  # an existing session that the reset must end
    browser.sign_in_password(first, citizen.username, citizen.password)
    browser.submit(browser.page(f"/login/{first}/totp"), {"code": citizen.code()})
    assert browser.session_cookie()

    interaction_id = browser.start(force_login=True)
    forgot = browser.page(f"/login/{interaction_id}/forgot")
    sent = browser.submit(forgot, {"username": "anahit"})
    assert sent.headers["location"] == f"/login/{interaction_id}/forgot?sent=1"
    link = _reset_link(runtime)
    assert "lang=" in link

    reset_page = browser.page(link)
    assert 'autocomplete="new-password"' in reset_page.text
    too_common = browser.submit(reset_page, {"password": "password123", "confirm": "password123"})
    assert too_common.headers["location"].endswith("?error=blocked")
    shown = browser.page(too_common.headers["location"])
    assert "չափազանց տարածված" in shown.text  # "too common", in Armenian by default
    short = browser.submit(reset_page, {"password": "short", "confirm": "short"})
    assert short.headers["location"].endswith("?error=too_short")
    mismatch = browser.submit(reset_page, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert mismatch.headers["location"].endswith("?error=mismatch")

    done = browser.submit(reset_page, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.headers["location"] == f"/password/reset-done?next={interaction_id}"
    assert passwords.verify_password(NEW_PASSWORD, user_row(runtime, citizen.id).password_hash)
    assert events_of(runtime, "session.ended_all")[0].data["reason"] == "password_reset"
    # Single use.
    assert browser.page(link).status_code == 400

    # The old session no longer counts; the new password still needs the second factor.
    after = browser.sign_in_password(interaction_id, "anahit", NEW_PASSWORD)
    assert after.headers["location"] == f"/login/{interaction_id}/totp"
    done = browser.submit(browser.page(f"/login/{interaction_id}/totp"), {"code": citizen.code(1)})
    assert done.headers["location"] == resume_location(interaction_id)


def test_forgot_password_answers_the_same_for_unknown_accounts(
    browser: Browser, runtime: Runtime
) -> None:
    add_citizen(runtime)
    interaction_id = browser.start()
    forgot = browser.page(f"/login/{interaction_id}/forgot")
    unknown = browser.submit(forgot, {"username": "nobody"})
    known = browser.submit(forgot, {"username": "anahit"})
    assert unknown.headers["location"] == known.headers["location"]
    assert (
        browser.page(unknown.headers["location"]).text
        == browser.page(known.headers["location"]).text
    )
    assert len(outbox(runtime)) == 1


def _earlier(runtime: Runtime, by: timedelta) -> None:
    """Move every reset link sent so far back in time (as if `by` had passed)."""
    with runtime.db.transaction() as db:
        for row in db.scalars(select(PasswordReset)):
            row.created_at -= by


def test_reset_emails_to_one_account_are_capped_per_day_without_telling(
    browser: Browser, runtime: Runtime
) -> None:
    add_citizen(runtime)
    limit = runtime.settings.password_reset_daily_limit
    assert limit == 5
    interaction_id = browser.start()
    forgot = browser.page(f"/login/{interaction_id}/forgot")
    for _ in range(limit):
        browser.submit(forgot, {"username": "anahit"})
        _earlier(runtime, timedelta(minutes=2))  # past the one-a-minute wait
    assert len(outbox(runtime)) == limit

    capped = browser.submit(forgot, {"username": "anahit"})
    unknown = browser.submit(forgot, {"username": "nobody"})
    assert capped.status_code == unknown.status_code == 303
    assert capped.headers["location"] == unknown.headers["location"]
    assert (
        browser.page(capped.headers["location"]).text
        == browser.page(unknown.headers["location"]).text
    )
    assert len(outbox(runtime)) == limit  # nothing more was sent
    refused = [e for e in events_of(runtime, "auth.password_reset_requested") if e.user_id]
    assert refused[-1].outcome == "failure" and refused[-1].data["reason"] == "daily_limit"

    _earlier(runtime, timedelta(hours=24))  # a day later the account can be sent one again
    browser.submit(forgot, {"username": "anahit"})
    assert len(outbox(runtime)) == limit + 1


def test_must_change_password_is_asked_before_returning(browser: Browser, runtime: Runtime) -> None:
    citizen = add_citizen(runtime, must_change_password=True)
    interaction_id = browser.start()
    browser.sign_in_password(interaction_id, citizen.username, citizen.password)
    after_code = browser.submit(
        browser.page(f"/login/{interaction_id}/totp"), {"code": citizen.code()}
    )
    assert after_code.headers["location"] == f"/login/{interaction_id}/new-password"
    assert browser.session_cookie() is None
    page = browser.follow(after_code)
    same = browser.submit(page, {"password": citizen.password, "confirm": citizen.password})
    assert same.headers["location"].endswith("?error=same")
    named = browser.submit(page, {"password": "anahit", "confirm": "anahit"})
    assert named.headers["location"].endswith("?error=too_short")
    done = browser.submit(page, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.headers["location"] == resume_location(interaction_id)
    assert not user_row(runtime, citizen.id).must_change_password
