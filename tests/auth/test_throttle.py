"""Throttling: growing delays and locks per account, a sliding window per client address."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from idp.auth.throttle import (
    ALLOWED,
    DatabaseWindow,
    IpWindow,
    RedisWindow,
    Throttle,
    ThrottlePolicy,
    Verdict,
)
from idp.cli import main
from idp.db.models import Event, LoginThrottle, User
from idp.runtime import Runtime

from ..conftest import REDIS_URL, make_settings

NOW = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
IP = "203.0.113.7"
WINDOWS = ["database", *(["redis"] if REDIS_URL else [])]


@pytest.fixture(params=WINDOWS)
def window(request: pytest.FixtureRequest) -> Iterator[IpWindow]:
    """Where per-address counters live: the database, and Redis when IDP_TEST_REDIS_URL is set
    (then it must answer)."""
    if request.param == "database":
        yield DatabaseWindow()
        return
    prefix = f"idp-test:{uuid.uuid4().hex}:"
    redis_window = RedisWindow(REDIS_URL, prefix=prefix)
    try:
        redis_window.client.ping()
    except Exception as exc:
        pytest.fail(f"IDP_TEST_REDIS_URL is set but Redis is unreachable: {exc}")
    yield redis_window
    for key in redis_window.client.scan_iter(f"{prefix}*"):
        redis_window.client.delete(key)
    redis_window.client.close()


def throttle_with(window: IpWindow, **policy: int) -> Throttle:
    return Throttle(ThrottlePolicy(**policy), window)


def check(
    runtime: Runtime, throttle: Throttle, user_id: int | None, when: datetime, ip: str | None = IP
) -> Verdict:
    with runtime.db.transaction() as session:
        return throttle.check(session, user_id=user_id, ip=ip, now=when)


def fail(
    runtime: Runtime, throttle: Throttle, user_id: int | None, when: datetime, ip: str | None = IP
) -> Verdict:
    with runtime.db.transaction() as session:
        return throttle.record_failure(session, user_id=user_id, ip=ip, now=when)


def test_delays_grow_after_three_failures_and_success_clears_them(
    runtime: Runtime, citizen: User, window: IpWindow
) -> None:
    throttle = throttle_with(window)
    when = NOW
    for _ in range(2):
        assert fail(runtime, throttle, citizen.id, when) == ALLOWED
    for expected in (1, 2, 4, 8):
        verdict = fail(runtime, throttle, citizen.id, when)
        assert verdict == Verdict(False, expected, False, "account_delay")
        assert not check(
            runtime, throttle, citizen.id, when + timedelta(seconds=expected - 0.5)
        ).allowed
        when += timedelta(seconds=expected)
        assert check(runtime, throttle, citizen.id, when).allowed
    with runtime.db.transaction() as session:
        throttle.record_success(session, user_id=citizen.id, ip=IP, now=when)
    assert fail(runtime, throttle, citizen.id, when) == ALLOWED


def test_ten_failures_lock_the_account_for_fifteen_minutes(
    runtime: Runtime, citizen: User, window: IpWindow
) -> None:
    throttle = throttle_with(window)
    when = NOW
    for _ in range(9):
        fail(runtime, throttle, citizen.id, when)
        when += timedelta(minutes=2)
    locked = fail(runtime, throttle, citizen.id, when)
    assert locked == Verdict(False, 900, True, "account_locked")
    # failures while locked are not counted: hammering cannot prolong the lock
    for minutes in range(1, 15):
        assert fail(runtime, throttle, citizen.id, when + timedelta(minutes=minutes)).locked
    with runtime.db.read() as session:
        row = session.get_one(LoginThrottle, citizen.id)
        assert row.failures == 10
        events = session.scalars(select(Event).where(Event.type == "auth.account_locked")).all()
    assert [e.user_id for e in events] == [citizen.id]
    assert check(runtime, throttle, citizen.id, when + timedelta(seconds=900)).allowed


def test_an_account_stays_locked_after_too_many_failures_until_unlocked(
    runtime: Runtime, citizen: User, window: IpWindow
) -> None:
    throttle = throttle_with(window, lock_after=3, max_failures=6, lock_duration=60)
    when = NOW
    for _ in range(6):
        fail(runtime, throttle, citizen.id, when)
        when += timedelta(minutes=5)
    verdict = check(runtime, throttle, citizen.id, when + timedelta(days=30))
    assert verdict == Verdict(False, None, True, "account_locked")
    with runtime.db.transaction() as session:
        assert throttle.state(session, citizen.id, now=when) == "locked_until_unlock"
        assert throttle.unlock(session, citizen.id)
        assert throttle.state(session, citizen.id, now=when) == "ok"
    assert check(runtime, throttle, citizen.id, when) == ALLOWED


def test_one_address_gets_a_limited_number_of_failures_per_window(
    runtime: Runtime, citizen: User, window: IpWindow
) -> None:
    throttle = throttle_with(window, ip_max_failures=5, ip_window=60)
    # unknown users and real ones count alike
    for second in range(5):
        fail(runtime, throttle, None if second % 2 else citizen.id, NOW + timedelta(seconds=second))
    verdict = check(runtime, throttle, None, NOW + timedelta(seconds=10))
    assert verdict == Verdict(False, 50, False, "ip_limited")
    assert check(runtime, throttle, None, NOW + timedelta(seconds=10), ip="198.51.100.1").allowed
    # the window slides: the oldest failure leaves it after 60 s
    assert check(runtime, throttle, None, NOW + timedelta(seconds=60)).allowed


def test_unknown_and_known_accounts_get_the_same_verdicts(
    runtime: Runtime, citizen: User, window: IpWindow
) -> None:
    throttle = throttle_with(window)
    assert check(runtime, throttle, None, NOW) == check(runtime, throttle, citizen.id, NOW)
    # a first wrong password and a first unknown username: the same verdict
    assert fail(runtime, throttle, citizen.id, NOW) == fail(runtime, throttle, None, NOW)


def test_simultaneous_failures_are_all_counted(
    runtime: Runtime, citizen: User, window: IpWindow
) -> None:
    throttle = throttle_with(window)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            barrier.wait(10)
            fail(runtime, throttle, citizen.id, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    with runtime.db.read() as session:
        assert session.get_one(LoginThrottle, citizen.id).failures == 6


def test_the_database_stands_in_when_redis_is_away(runtime: Runtime, citizen: User) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    throttle = Throttle(
        ThrottlePolicy(ip_max_failures=2), RedisWindow(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    )
    fail(runtime, throttle, None, NOW)
    fail(runtime, throttle, None, NOW)
    assert check(runtime, throttle, None, NOW).reason == "ip_limited"


def test_settings_choose_the_rules_and_the_counters(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        "sqlite://",
        throttle_lock_after=5,
        throttle_lock_duration=600,
        throttle_max_failures=20,
        throttle_ip_max_failures=100,
        throttle_ip_window=120,
    )
    throttle = Throttle.from_settings(settings)
    assert isinstance(throttle.window, DatabaseWindow)
    assert throttle.policy.lock_after == 5 and throttle.policy.lock_duration == 600
    assert throttle.policy.max_failures == 20
    assert (throttle.policy.ip_max_failures, throttle.policy.ip_window) == (100, 120)
    redis_settings = make_settings(tmp_path, "sqlite://", redis_url="redis://127.0.0.1:6379/0")
    assert isinstance(Throttle.from_settings(redis_settings).window, RedisWindow)
    with pytest.raises(ValueError, match="throttle_max_failures"):
        make_settings(tmp_path, "sqlite://", throttle_lock_after=10, throttle_max_failures=10)


def test_admin_unlocks_an_account_from_the_command_line(
    runtime: Runtime, citizen: User, cli_env: object, capsys: pytest.CaptureFixture[str]
) -> None:
    throttle = runtime.throttle
    when = datetime.now(UTC)
    for _ in range(runtime.settings.throttle_lock_after):
        fail(runtime, throttle, citizen.id, when)
    assert check(runtime, throttle, citizen.id, when).locked
    assert main(["users", "unlock", "anahit", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["username"] == "anahit" and data["had_failed_attempts"] is True
    assert check(runtime, throttle, citizen.id, when) == ALLOWED
    with runtime.db.read() as session:
        event = session.scalars(select(Event).where(Event.type == "admin.user_unlocked")).one()
    assert event.user_id == citizen.id and event.actor and event.actor.startswith("cli:")
    assert main(["users", "unlock", "anahit"]) == 0
    assert "no failed attempts" in capsys.readouterr().out
    assert main(["users", "unlock", "nobody"]) == 1
    assert "no user" in capsys.readouterr().err
