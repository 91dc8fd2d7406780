"""Fixtures for the sign-in building blocks: a citizen in a fresh database, and races."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from idp.db.models import User
from idp.runtime import Runtime
from idp.services import users as user_service

T = TypeVar("T")
PASSWORD = "ambling-otter-under-ararat"


@pytest.fixture
def citizen(runtime: Runtime) -> User:
    with runtime.db.transaction() as session:
        return user_service.create_user(
            session,
            runtime.secrets,
            user_service.NewUser(username="anahit", password=PASSWORD, email="anahit@example.am"),
            actor="test",
        )


def _wait_for_blocked_statement(runtime: Runtime, table: str) -> None:
    """On PostgreSQL, wait until another transaction is blocked on a lock of `table`."""
    with runtime.db.engine.connect() as connection:
        for _ in range(3000):
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND query ILIKE :pattern"
                ),
                {"pattern": f"%{table}%"},
            ).scalar_one()
            connection.rollback()  # activity is a snapshot per transaction: take a new one
            if waiting:
                return
            threading.Event().wait(0.01)
    raise AssertionError("the second transaction never waited for the first")


def race(
    runtime: Runtime,
    table: str,
    first: Callable[[Session], T],
    second: Callable[[Session], T],
) -> tuple[T, T]:
    """Run `first` in a transaction that stays open while `second` runs in another one.

    On PostgreSQL the second transaction is seen blocked on the first one's row lock before the
    first commits: the two really overlap. Returns both results.
    """
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    holding, release = threading.Event(), threading.Event()

    def run_first() -> None:
        try:
            with runtime.db.transaction() as session:
                results[1] = first(session)
                holding.set()
                release.wait(30)
        except BaseException as exc:
            errors.append(exc)
            holding.set()

    def run_second() -> None:
        try:
            with runtime.db.transaction() as session:
                results[2] = second(session)
        except BaseException as exc:
            errors.append(exc)

    one = threading.Thread(target=run_first)
    one.start()
    holding.wait(30)
    two = threading.Thread(target=run_second)
    two.start()
    try:
        if runtime.db.dialect == "postgresql" and not errors:
            _wait_for_blocked_statement(runtime, table)
    finally:
        release.set()
        one.join(30)
        two.join(30)
    if errors:
        raise errors[0]
    return results[1], results[2]


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    """One transaction, committed at the end of the test."""
    with runtime.db.transaction() as s:
        yield s
