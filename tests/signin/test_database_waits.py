"""Sign-in and a busy database: nothing slow holds a transaction, and a step that cannot be
written in time asks the citizen to try again, without losing the sign-in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import update
from starlette.testclient import TestClient

from idp.app import create_app
from idp.db import Database, DatabaseUnavailable
from idp.db.models import Interaction, User
from idp.runtime import Runtime
from tests.conftest import make_settings
from tests.signin.helpers import PASSWORD, Browser, add_citizen, add_client, forms

# argon2id with a time cost far above ours: checking this password takes seconds.
SLOW_HASH = PasswordHasher(time_cost=60, memory_cost=47104, parallelism=1).hash(PASSWORD)


def touch_interaction(database: Database, interaction_id: str) -> bool:
    """A write to the sign-in's own row by another process; False if it had to wait more than
    the database's timeout for a lock."""
    try:
        with database.transaction() as db:
            db.execute(
                update(Interaction)
                .where(Interaction.id == interaction_id)
                .values(expires_at=Interaction.expires_at)
            )
    except DatabaseUnavailable:
        return False
    return True


def test_no_write_transaction_is_open_while_the_password_is_checked(
    browser: Browser, runtime: Runtime
) -> None:
    citizen = add_citizen(runtime)
    with runtime.db.transaction() as db:
        db.execute(update(User).where(User.id == citizen.id).values(password_hash=SLOW_HASH))
    interaction_id = browser.start()
    form = browser.page(f"/login/{interaction_id}")
    answered: list[httpx.Response] = []
    submit = threading.Thread(
        target=lambda: answered.append(
            browser.submit(form, {"username": citizen.username, "password": PASSWORD})
        )
    )
    other_process = Database.from_url(runtime.settings.effective_database_url, statement_timeout=1)
    writes: list[bool] = []
    try:
        submit.start()
        while submit.is_alive():
            writes.append(touch_interaction(other_process, interaction_id))
            time.sleep(0.05)
    finally:
        submit.join()
        other_process.dispose()
    assert answered[0].status_code == 303
    assert answered[0].headers["location"] == f"/login/{interaction_id}/totp"
    assert len(writes) >= 3  # the password took seconds to check, and meanwhile:
    assert all(writes), "another writer waited on the sign-in while its password was checked"
    with runtime.db.read() as db:  # the costly hash was replaced by one at today's parameters
        stored = db.get(User, citizen.id)
        assert stored is not None and stored.password_hash != SLOW_HASH


@pytest.fixture
def impatient(tmp_path: Path, database_url: str) -> Iterator[tuple[Runtime, Browser]]:
    """The provider with half a second to get its turn at the database."""
    settings = make_settings(tmp_path, database_url, database_statement_timeout=0.5)
    runtime = Runtime.build(settings)
    runtime.keyring.ensure_initial()
    add_client(runtime)
    with TestClient(create_app(runtime=runtime), base_url=settings.issuer) as http:
        http.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
        http.headers["Accept-Language"] = "ru"
        yield runtime, Browser(http, runtime)
    runtime.db.dispose()


def test_a_step_that_cannot_be_written_in_time_asks_to_try_again_and_keeps_the_sign_in(
    impatient: tuple[Runtime, Browser],
) -> None:
    runtime, browser = impatient
    citizen = add_citizen(runtime)
    interaction_id = browser.start()
    form = browser.page(f"/login/{interaction_id}")
    submitted = {**forms(form.text)[0].fields, "username": citizen.username, "password": PASSWORD}
    other_process = Database.from_url(runtime.settings.effective_database_url)
    try:
        with other_process.transaction() as db:  # holds the sign-in's row (and SQLite's lock)
            db.execute(
                update(Interaction)
                .where(Interaction.id == interaction_id)
                .values(expires_at=Interaction.expires_at)
            )
            busy = browser.client.post(
                f"/login/{interaction_id}",
                data=submitted,
                follow_redirects=False,
            )
    finally:
        other_process.dispose()
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "5"
    assert busy.headers["content-type"].startswith("text/html")
    assert "Попробуйте ещё раз чуть позже" in busy.text  # in the citizen's language
    assert f'href="/login/{interaction_id}"' in busy.text  # back to the step, to try again
    again = browser.page(f"/login/{interaction_id}")
    assert again.status_code == 200
    signed = browser.submit(again, {"username": citizen.username, "password": PASSWORD})
    assert signed.headers["location"] == f"/login/{interaction_id}/totp"
