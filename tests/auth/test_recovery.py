"""Recovery codes: ten, shown once, stored hashed, each usable once, regenerable."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth import recovery
from idp.db.models import RecoveryCode, User
from idp.runtime import Runtime

from .conftest import race


def generate(runtime: Runtime, user: User) -> list[str]:
    with runtime.db.transaction() as session:
        return recovery.generate(session, user.id)


def consume(runtime: Runtime, user: User, code: str) -> bool:
    with runtime.db.transaction() as session:
        return recovery.consume(session, user.id, code)


def remaining(runtime: Runtime, user: User) -> int:
    with runtime.db.read() as session:
        return recovery.remaining(session, user.id)


def test_ten_distinct_readable_codes_stored_only_hashed(runtime: Runtime, citizen: User) -> None:
    codes = generate(runtime, citizen)
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert re.fullmatch(
            r"[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}", code
        )
    with runtime.db.read() as session:
        stored = session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == citizen.id))
        rows = list(stored)
    assert len(rows) == 10
    dump = " ".join(f"{r.salt} {r.code_hash}" for r in rows)
    for code in codes:
        assert code not in dump and code.replace("-", "") not in dump
    assert remaining(runtime, citizen) == 10


def test_each_code_works_once(runtime: Runtime, citizen: User) -> None:
    codes = generate(runtime, citizen)
    assert consume(runtime, citizen, codes[3])
    assert not consume(runtime, citizen, codes[3])
    assert remaining(runtime, citizen) == 9
    assert consume(runtime, citizen, codes[0])
    assert remaining(runtime, citizen) == 8


def test_codes_are_accepted_as_people_type_them(runtime: Runtime, citizen: User) -> None:
    codes = generate(runtime, citizen)
    assert consume(runtime, citizen, codes[0].upper())
    assert consume(runtime, citizen, "  " + codes[1].replace("-", " ") + " ")
    assert consume(runtime, citizen, codes[2].replace("-", ""))
    with_look_alike = codes[3].replace("0", "O").replace("1", "l")
    assert consume(runtime, citizen, with_look_alike)


def test_only_twelve_characters_of_the_alphabet_can_be_a_code(
    runtime: Runtime, citizen: User
) -> None:
    """What the pages call a typing mistake (told as such, never counted as a failure)."""
    codes = generate(runtime, citizen)
    for typed in (codes[0], codes[0].upper(), codes[0].replace("-", " "), "0123-4567-89ab"):
        assert recovery.well_formed(typed), typed
    assert recovery.well_formed("oooo-iiii-llll")  # look-alikes read as 0 and 1
    for typed in ("0123-4567-89a", "0123-4567-89abc", "uuuu-0000-1111", "0123-4567-89a!", ""):
        assert not recovery.well_formed(typed), typed
    assert not recovery.well_formed("0123-4567-89\u0430")  # a Cyrillic letter


def test_wrong_codes_and_other_citizens_codes_are_refused(runtime: Runtime, citizen: User) -> None:
    from idp.services import users as user_service

    codes = generate(runtime, citizen)
    with runtime.db.transaction() as session:
        other = user_service.create_user(
            session,
            runtime.secrets,
            user_service.NewUser(username="vardan", password="ambling-otter-under-ararat"),
            actor="test",
        )
    assert not consume(runtime, other, codes[0])
    assert not consume(runtime, citizen, "")
    assert not consume(runtime, citizen, "aaaa-bbbb-cccc")
    assert remaining(runtime, citizen) == 10


def test_regenerating_replaces_every_old_code(runtime: Runtime, citizen: User) -> None:
    old = generate(runtime, citizen)
    assert consume(runtime, citizen, old[0])
    new = generate(runtime, citizen)
    assert remaining(runtime, citizen) == 10
    assert not set(old) & set(new)
    assert not any(consume(runtime, citizen, code) for code in old[1:])
    assert consume(runtime, citizen, new[0])


def test_two_simultaneous_uses_of_one_code_succeed_once(runtime: Runtime, citizen: User) -> None:
    codes = generate(runtime, citizen)

    def use(session: Session) -> bool:
        return recovery.consume(session, citizen.id, codes[5])

    first, second = race(runtime, "recovery_codes", use, use)
    assert sorted([first, second]) == [False, True]
    assert remaining(runtime, citizen) == 9
