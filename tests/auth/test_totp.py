"""Authenticator apps: enrolment, codes accepted within ±30 s, each code accepted only once."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth import totp
from idp.db.models import TotpCredential, User
from idp.runtime import Runtime

from .conftest import race

NOW = datetime(2026, 3, 1, 9, 0, 15, tzinfo=UTC)


def code_at(secret: str, when: datetime) -> str:
    return str(pyotp.TOTP(secret).at(when))


def enrolled(runtime: Runtime, citizen: User) -> tuple[int, str]:
    """A confirmed authenticator app for the citizen: its id and seed."""
    with runtime.db.transaction() as session:
        user = session.get_one(User, citizen.id)
        credential, secret = totp.enrol(session, user, runtime.secrets)
        then = NOW - timedelta(minutes=5)
        assert totp.confirm(session, credential, code_at(secret, then), runtime.secrets, now=then)
        return credential.id, secret


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


def test_enrolment_is_confirmed_by_a_valid_code(runtime: Runtime, citizen: User) -> None:
    with runtime.db.transaction() as session:
        user = session.get_one(User, citizen.id)
        credential, secret = totp.enrol(session, user, runtime.secrets)
        assert credential.confirmed_at is None
        assert secret not in credential.secret_encrypted
        wrong = f"{(int(code_at(secret, NOW)) + 1) % 1_000_000:06d}"
        assert not totp.confirm(session, credential, wrong, runtime.secrets, now=NOW)
        # an unconfirmed app does not sign anyone in
        assert not totp.verify_and_consume(
            session, credential, code_at(secret, NOW), runtime.secrets, now=NOW
        )
        assert totp.confirm(session, credential, code_at(secret, NOW), runtime.secrets, now=NOW)
        assert credential.confirmed_at == NOW


def test_enrolling_again_replaces_an_unconfirmed_app(runtime: Runtime, citizen: User) -> None:
    with runtime.db.transaction() as session:
        user = session.get_one(User, citizen.id)
        _, old_secret = totp.enrol(session, user, runtime.secrets)
        second, new_secret = totp.enrol(session, user, runtime.secrets)
        assert old_secret != new_secret
        rows = session.scalars(select(TotpCredential).where(TotpCredential.user_id == user.id))
        assert len(list(rows)) == 1
        stale = code_at(old_secret, NOW)
        if stale != code_at(new_secret, NOW):
            assert not totp.confirm(session, second, stale, runtime.secrets, now=NOW)
        assert totp.confirm(session, second, code_at(new_secret, NOW), runtime.secrets, now=NOW)
        with pytest.raises(totp.AlreadyEnrolled):
            totp.enrol(session, user, runtime.secrets)
        assert totp.remove(session, user)
        _, third = totp.enrol(session, user, runtime.secrets)
        assert third not in (old_secret, new_secret)


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
