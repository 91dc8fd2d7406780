"""Email one-time codes: sent in the citizen's language, short-lived, few attempts, used once."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.auth import email_otp
from idp.db.models import EmailCode, User
from idp.mail import MailError, OutboxMailer, SmtpMailer
from idp.runtime import Runtime

from .conftest import race

NOW = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


def outbox(runtime: Runtime) -> list[dict[str, Any]]:
    assert isinstance(runtime.mailer, OutboxMailer)
    return runtime.mailer.messages()


def send(
    runtime: Runtime, user: User, when: datetime = NOW, **options: Any
) -> tuple[email_otp.SentCode, str]:
    """Send a code; returns what the page is told and the code read from the outbox."""
    before = len(outbox(runtime))
    sent = email_otp.send_code(runtime.db, user.id, runtime.mailer, now=when, **options)
    messages = outbox(runtime)
    assert len(messages) == before + 1
    found = re.search(r"\b(\d{6})\b", messages[-1]["text"])
    assert found
    return sent, found.group(1)


def verify(runtime: Runtime, user: User, code: str, when: datetime = NOW, **options: Any) -> bool:
    with runtime.db.transaction() as session:
        return email_otp.verify(session, user.id, code, now=when, **options)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_code_is_mailed_and_the_page_learns_where(runtime: Runtime, citizen: User) -> None:
    sent, code = send(runtime, citizen)
    assert sent.masked_email == "a***@example.am"
    assert sent.expires_at == NOW + timedelta(minutes=10)
    assert sent.resend_after == NOW + timedelta(seconds=60)
    message = outbox(runtime)[-1]
    assert message["to"] == "anahit@example.am"
    assert "10" in message["text"]
    with runtime.db.read() as session:
        stored = session.scalars(select(EmailCode)).one()
    assert code not in (stored.code_hash, stored.salt)


@pytest.mark.parametrize(
    ("locale", "subject"),
    [("en", "Your one-time code"), ("hy", "Ձեր մեկանգամյա կոդը"), ("ru", "Ваш одноразовый код")],
)
def test_the_email_is_in_the_citizens_language(
    runtime: Runtime, citizen: User, locale: str, subject: str
) -> None:
    send(runtime, citizen, locale=locale)
    assert outbox(runtime)[-1]["subject"] == subject


def test_an_unknown_language_falls_back_to_english(runtime: Runtime, citizen: User) -> None:
    send(runtime, citizen, locale="fr-FR")
    assert outbox(runtime)[-1]["subject"] == "Your one-time code"


def test_the_right_code_works_once(runtime: Runtime, citizen: User) -> None:
    _, code = send(runtime, citizen)
    assert not verify(runtime, citizen, wrong(code))
    assert verify(runtime, citizen, f" {code[:3]} {code[3:]}")
    assert not verify(runtime, citizen, code)


def test_five_wrong_attempts_kill_the_code(runtime: Runtime, citizen: User) -> None:
    _, code = send(runtime, citizen)
    for _ in range(5):
        assert not verify(runtime, citizen, wrong(code))
    assert not verify(runtime, citizen, code)


def test_a_code_expires_after_ten_minutes(runtime: Runtime, citizen: User) -> None:
    _, code = send(runtime, citizen)
    assert not verify(runtime, citizen, code, NOW + timedelta(minutes=10, seconds=1))
    assert verify(runtime, citizen, code, NOW + timedelta(minutes=9, seconds=59))


def test_resending_waits_a_minute_and_replaces_the_code(runtime: Runtime, citizen: User) -> None:
    _, first = send(runtime, citizen)
    with pytest.raises(email_otp.Cooldown) as cooldown:
        email_otp.send_code(runtime.db, citizen.id, runtime.mailer, now=NOW + timedelta(seconds=45))
    assert cooldown.value.seconds_left == 15
    later = NOW + timedelta(seconds=60)
    _, second = send(runtime, citizen, later)
    if first != second:
        assert not verify(runtime, citizen, first, later)
    assert verify(runtime, citizen, second, later)


def test_a_code_is_bound_to_its_sign_in(runtime: Runtime, citizen: User) -> None:
    _, code = send(runtime, citizen, interaction_id="interaction-a")
    assert not verify(runtime, citizen, code, interaction_id="interaction-b")
    assert not verify(runtime, citizen, code)
    assert verify(runtime, citizen, code, interaction_id="interaction-a")


def test_codes_are_bound_to_their_citizen(runtime: Runtime, citizen: User) -> None:
    from idp.services import users as user_service

    with runtime.db.transaction() as session:
        other = user_service.create_user(
            session,
            runtime.secrets,
            user_service.NewUser(
                username="vardan", password="ambling-otter-under-ararat", email="v@example.am"
            ),
            actor="test",
        )
    _, code = send(runtime, citizen)
    assert not verify(runtime, other, code)
    assert verify(runtime, citizen, code)


def test_an_account_without_email_gets_no_code(runtime: Runtime, citizen: User) -> None:
    with runtime.db.transaction() as session:
        session.get_one(User, citizen.id).email = None
    with pytest.raises(email_otp.NoEmailAddress):
        email_otp.send_code(runtime.db, citizen.id, runtime.mailer, now=NOW)


def test_when_the_mail_server_refuses_nothing_is_stored(runtime: Runtime, citizen: User) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = SmtpMailer(host="127.0.0.1", port=port, sender="x@example.am", security="none")
    with pytest.raises(MailError):
        email_otp.send_code(runtime.db, citizen.id, down, now=NOW)
    with runtime.db.read() as session:
        assert session.scalar(select(func.count()).select_from(EmailCode)) == 0
    send(runtime, citizen)  # and no cooldown was started


def test_two_simultaneous_submits_of_one_code_succeed_once(runtime: Runtime, citizen: User) -> None:
    _, code = send(runtime, citizen)

    def submit(session: Session) -> bool:
        return email_otp.verify(session, citizen.id, code, now=NOW)

    first, second = race(runtime, "email_codes", submit, submit)
    assert sorted([first, second]) == [False, True]
