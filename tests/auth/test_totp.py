"""Authenticator apps: setting one up, codes accepted within ±30 s, each code accepted only once."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth import email_otp, totp
from idp.db.models import TotpCredential, User
from idp.runtime import Runtime

from .conftest import race

NOW = datetime(2026, 3, 1, 9, 0, 15, tzinfo=UTC)


def code_at(secret: str, when: datetime) -> str:
    return str(pyotp.TOTP(secret).at(when))


def enrolled(runtime: Runtime, citizen: User) -> tuple[int, str]:
    """A confirmed authenticator app for the citizen: its id and seed."""
    secret = totp.new_secret()
    with runtime.db.transaction() as session:
        user = session.get_one(User, citizen.id)
        then = NOW - timedelta(minutes=5)
        code = code_at(secret, then)
        assert totp.confirm(session, user, secret, code, runtime.secrets, replace=False, now=then)
        assert user.totp is not None
        return user.totp.id, secret


def verify(runtime: Runtime, credential_id: int, code: str, when: datetime = NOW) -> bool:
    with runtime.db.transaction() as session:
        credential = session.get_one(TotpCredential, credential_id)
        return totp.verify_and_consume(session, credential, code, runtime.secrets, now=when)


def test_new_secrets_are_160_random_bits_in_base32() -> None:
    secrets = {totp.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri_names_the_account_and_issuer() -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    uri = totp.provisioning_uri(secret, account="anahit", issuer_name="Armenian eID")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    query = parse_qs(parts.query)
    assert query["secret"] == ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"]
    assert query["issuer"] == ["Armenian eID"]
    assert "anahit" in parts.path


def test_qr_code_is_an_accessible_inline_svg() -> None:
    svg = totp.qr_svg("otpauth://totp/x:anahit?secret=AAAA&issuer=x", title='Scan "this" <code>')
    assert svg.startswith("<svg ")
    assert 'role="img"' in svg
    assert "<title>Scan" in svg
    assert "<code>" not in svg
    assert "<script" not in svg


def test_a_seed_becomes_the_app_only_with_a_valid_code(runtime: Runtime, citizen: User) -> None:
    secret = totp.new_secret()
    with runtime.db.transaction() as session:
        user = session.get_one(User, citizen.id)
        wrong = f"{(int(code_at(secret, NOW)) + 1) % 1_000_000:06d}"
        box = runtime.secrets
        assert not totp.confirm(session, user, secret, wrong, box, replace=False, now=NOW)
        assert user.totp is None
        code = code_at(secret, NOW)
        assert totp.confirm(session, user, secret, code, runtime.secrets, replace=False, now=NOW)
        assert user.totp is not None and user.totp.confirmed_at == NOW
        assert secret not in user.totp.secret_encrypted
        # the code that confirmed it is used up
        assert not totp.verify_and_consume(session, user.totp, code, runtime.secrets, now=NOW)


def test_a_confirmed_app_is_replaced_only_when_asked(runtime: Runtime, citizen: User) -> None:
    credential_id, first = enrolled(runtime, citizen)
    second = totp.new_secret()
    with runtime.db.transaction() as session:
        user = session.get_one(User, citizen.id)
        code = code_at(second, NOW)
        with pytest.raises(totp.AlreadyEnrolled):  # set up meanwhile in another sign-in
            totp.confirm(session, user, second, code, runtime.secrets, replace=False, now=NOW)
        assert totp.confirm(session, user, second, code, runtime.secrets, replace=True, now=NOW)
        rows = session.scalars(select(TotpCredential).where(TotpCredential.user_id == user.id))
        assert [row.id for row in rows] == [credential_id]
    later = NOW + timedelta(seconds=30)
    if code_at(first, later) != code_at(second, later):
        assert not verify(runtime, credential_id, code_at(first, later), later)
    assert verify(runtime, credential_id, code_at(second, later), later)


def test_of_two_simultaneous_set_ups_exactly_one_wins(runtime: Runtime, citizen: User) -> None:
    seeds = [totp.new_secret(), totp.new_secret()]

    def set_up(seed: str) -> Callable[[Session], str]:
        def run(session: Session) -> str:
            user = session.get_one(User, citizen.id)
            code = code_at(seed, NOW)
            try:
                totp.confirm(session, user, seed, code, runtime.secrets, replace=False, now=NOW)
            except totp.AlreadyEnrolled:
                return "refused"
            return "confirmed"

        return run

    first, second = race(runtime, "totp_credentials", set_up(seeds[0]), set_up(seeds[1]))
    assert (first, second) == ("confirmed", "refused")
    with runtime.db.read() as session:
        [app] = session.scalars(select(TotpCredential)).all()
        assert runtime.secrets.decrypt(app.secret_encrypted) == seeds[0]


def test_an_unconfirmed_app_signs_no_one_in_and_is_replaced(
    runtime: Runtime, citizen: User
) -> None:
    old, new = totp.new_secret(), totp.new_secret()
    with runtime.db.transaction() as session:
        user = session.get_one(User, citizen.id)
        user.totp = TotpCredential(secret_encrypted=runtime.secrets.encrypt(old))
        session.flush()
        assert not totp.verify_and_consume(
            session, user.totp, code_at(old, NOW), runtime.secrets, now=NOW
        )
        code = code_at(new, NOW)
        assert totp.confirm(session, user, new, code, runtime.secrets, replace=False, now=NOW)
        assert user.totp is not None and user.totp.confirmed_at == NOW
        assert runtime.secrets.decrypt(user.totp.secret_encrypted) == new


def test_a_sealed_seed_opens_only_for_its_own_sign_in(runtime: Runtime) -> None:
    box, secret = runtime.secrets, totp.new_secret()
    sealed = totp.seal(box, secret, bound_to="interaction-a", now=NOW)
    assert secret not in sealed
    assert totp.unseal(box, sealed, bound_to="interaction-a", now=NOW) == secret
    assert totp.unseal(box, sealed, bound_to="interaction-b", now=NOW) is None
    assert totp.unseal(box, sealed, bound_to="interaction-a", max_age=300, now=NOW) == secret
    later = NOW + timedelta(seconds=301)
    assert totp.unseal(box, sealed, bound_to="interaction-a", max_age=300, now=later) is None
    assert totp.unseal(box, sealed[:-4] + "AAAA", bound_to="interaction-a", now=NOW) is None
    assert totp.unseal(box, "not sealed", bound_to="interaction-a", now=NOW) is None
    foreign = box.encrypt(secret)  # encrypted with the key, but not a sealed seed
    assert totp.unseal(box, foreign, bound_to="interaction-a", now=NOW) is None


def test_codes_of_the_previous_current_and_next_step_are_accepted(
    runtime: Runtime, citizen: User
) -> None:
    credential_id, secret = enrolled(runtime, citizen)
    assert verify(runtime, credential_id, code_at(secret, NOW - timedelta(seconds=30)))
    assert verify(runtime, credential_id, code_at(secret, NOW))
    assert verify(runtime, credential_id, code_at(secret, NOW + timedelta(seconds=30)))


@pytest.mark.parametrize("offset", [-60, 60, 3600])
def test_codes_outside_the_window_are_refused(runtime: Runtime, citizen: User, offset: int) -> None:
    credential_id, secret = enrolled(runtime, citizen)
    code = code_at(secret, NOW + timedelta(seconds=offset))
    if code not in {code_at(secret, NOW + timedelta(seconds=s)) for s in (-30, 0, 30)}:
        assert not verify(runtime, credential_id, code)


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "abcdef", "12 34 5x", "\uff11\uff12\uff13\uff14\uff15\uff16"]
)
def test_malformed_codes_are_refused(runtime: Runtime, citizen: User, code: str) -> None:
    credential_id, _ = enrolled(runtime, citizen)
    assert not verify(runtime, credential_id, code)


@pytest.mark.parametrize(
    ("typed", "possible"),
    [
        ("123456", True),
        (" 123 456 ", True),
        ("123-456", True),
        ("12345", False),
        ("1234567", False),
        ("12345a", False),
        ("O23456", False),
        ("\uff11\uff12\uff13\uff14\uff15\uff16", False),  # full-width digits
        ("\u0661\u0662\u0663\u0664\u0665\u0666", False),  # Arabic-Indic digits
    ],
)
def test_only_six_digits_can_be_a_code(typed: str, possible: bool) -> None:
    """What the pages call a typing mistake (told as such, never counted as a failure)."""
    assert totp.well_formed(typed) is possible
    assert email_otp.well_formed(typed) is possible


def test_spaces_in_a_code_are_ignored(runtime: Runtime, citizen: User) -> None:
    credential_id, secret = enrolled(runtime, citizen)
    code = code_at(secret, NOW)
    assert verify(runtime, credential_id, f" {code[:3]} {code[3:]} ")


def test_a_code_is_accepted_once_and_older_codes_never_after(
    runtime: Runtime, citizen: User
) -> None:
    credential_id, secret = enrolled(runtime, citizen)
    code = code_at(secret, NOW)
    assert verify(runtime, credential_id, code)
    assert not verify(runtime, credential_id, code)
    assert not verify(runtime, credential_id, code, NOW + timedelta(seconds=20))
    # the previous step's code is older than the one just used: refused
    assert not verify(runtime, credential_id, code_at(secret, NOW - timedelta(seconds=30)))
    # the next step's code is new: accepted once
    later = code_at(secret, NOW + timedelta(seconds=30))
    assert verify(runtime, credential_id, later, NOW + timedelta(seconds=30))
    assert not verify(runtime, credential_id, later, NOW + timedelta(seconds=30))


def test_two_simultaneous_submits_of_one_code_succeed_once(runtime: Runtime, citizen: User) -> None:
    credential_id, secret = enrolled(runtime, citizen)
    code = code_at(secret, NOW)

    def submit(session: Session) -> bool:
        credential = session.get_one(TotpCredential, credential_id)
        return totp.verify_and_consume(session, credential, code, runtime.secrets, now=NOW)

    first, second = race(runtime, "totp_credentials", submit, submit)
    assert sorted([first, second]) == [False, True]
    assert not verify(runtime, credential_id, code)


def test_the_seed_is_encrypted_with_the_secret_key(runtime: Runtime, citizen: User) -> None:
    credential_id, secret = enrolled(runtime, citizen)
    with runtime.db.read() as session:
        stored = session.get_one(TotpCredential, credential_id).secret_encrypted
    assert secret not in stored
    assert runtime.secrets.decrypt(stored) == secret
