"""Anti-automation for sign-in: per-account delays and locks, and a per-address window.

Per account (table `login_throttles`): consecutive failures are counted; from the
`delay_after`-th failure on, the next attempt must wait 1 s, 2 s, 4 s ... (at most `max_delay`);
every `lock_after` consecutive failures lock the account for `lock_duration`; after
`max_failures` it stays locked until `unlock` (administrator, or a completed password reset).
Failures while the account is locked are not counted, so a lock cannot be prolonged by
hammering it. A success clears the count.

Per client address: a sliding window of failed attempts (`ip_max_failures` per `ip_window`
seconds), counted in the database, or in Redis when `settings.redis_url` is set (the database
takes over while Redis cannot be reached).

Callers must answer a refused attempt exactly like a wrong password (see `Verdict`): the
verdict for an unknown user, a wrong password and a locked account then look the same from
outside. `docs/security.md` explains the choices.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from idp import events
from idp.config import Settings
from idp.db.inserts import upsert
from idp.db.models import LoginThrottle, ThrottleHit
from idp.logging import get_logger

log = get_logger("idp.auth.throttle")

Reason = Literal["ok", "account_delay", "account_locked", "ip_limited"]


@dataclass(frozen=True)
class ThrottlePolicy:
    delay_after: int = 3
    first_delay: int = 1
    max_delay: int = 60
    lock_after: int = 10
    lock_duration: int = 900
    max_failures: int = 50
    ip_max_failures: int = 30
    ip_window: int = 300

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            lock_after=settings.throttle_lock_after,
            lock_duration=settings.throttle_lock_duration,
            max_failures=settings.throttle_max_failures,
            ip_max_failures=settings.throttle_ip_max_failures,
            ip_window=settings.throttle_ip_window,
        )

    def delay(self, failures: int) -> int:
        """Seconds to wait after the given number of consecutive failures."""
        if failures < self.delay_after:
            return 0
        exponent = min(failures - self.delay_after, 30)
        return int(min(self.first_delay * 2**exponent, self.max_delay))


@dataclass(frozen=True)
class Verdict:
    """Whether a sign-in attempt may be checked now.

    When `allowed` is false the caller does not check the credentials (it may run the dummy
    password hash to keep the time comparable), and answers as for a wrong password: the same
    message for an unknown user, a wrong password and a locked account. Only `ip_limited` may
    be told as such ("too many attempts from your network, try again in N seconds"): it says
    nothing about any account. `locked` and `reason` are for events and logs.
    """

    allowed: bool
    retry_after: int | None = 0
    """Seconds before another attempt may be checked; None: not before an unlock."""
    locked: bool = False
    reason: Reason = "ok"


ALLOWED = Verdict(True)


class IpWindow(Protocol):
    """Where the sliding-window counters live."""

    def recent(
        self, session: Session, key: str, *, now: datetime, window: int, limit: int
    ) -> list[float]:
        """Timestamps of the latest `limit` hits within `window` seconds, newest first."""
        ...

    def add(self, session: Session, key: str, *, now: datetime, window: int) -> None: ...


class DatabaseWindow:
    """Counters in the `throttle_hits` table, in the caller's transaction."""

    def recent(
        self, session: Session, key: str, *, now: datetime, window: int, limit: int
    ) -> list[float]:
        since = now - timedelta(seconds=window)
        rows = session.scalars(
            select(ThrottleHit.at)
            .where(ThrottleHit.key == key, ThrottleHit.at > since)
            .order_by(ThrottleHit.at.desc())
            .limit(limit)
        )
        return [at.timestamp() for at in rows]

    def add(self, session: Session, key: str, *, now: datetime, window: int) -> None:
        since = now - timedelta(seconds=window)
        session.execute(delete(ThrottleHit).where(ThrottleHit.key == key, ThrottleHit.at <= since))
        session.add(ThrottleHit(key=key, at=now))
        session.flush()


def prune(session: Session, *, older_than: int, now: datetime | None = None) -> int:
    """Delete window hits older than `older_than` seconds (for the janitor)."""
    since = (now or datetime.now(UTC)) - timedelta(seconds=older_than)
    result = session.execute(delete(ThrottleHit).where(ThrottleHit.at <= since))
    return int(getattr(result, "rowcount", 0) or 0)


class RedisWindow:
    """Counters in Redis sorted sets shared by every process; the database stands in while
    Redis cannot be reached."""

    def __init__(self, url: str, *, prefix: str = "idp:throttle:", timeout: float = 1.0) -> None:
        import redis

        self.client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.prefix = prefix
        self.fallback = DatabaseWindow()
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)

    def recent(
        self, session: Session, key: str, *, now: datetime, window: int, limit: int
    ) -> list[float]:
        name, stamp = self.prefix + key, now.timestamp()
        try:
            pipe = self.client.pipeline()
            pipe.zremrangebyscore(name, "-inf", stamp - window)
            pipe.zrevrangebyscore(name, "+inf", f"({stamp - window}", start=0, num=limit)
            members = pipe.execute()[1]
        except self._errors as exc:
            log.warning("throttle.redis_unavailable", error=str(exc))
            return self.fallback.recent(session, key, now=now, window=window, limit=limit)
        return [float(member.split(b" ", 1)[0]) for member in members]

    def add(self, session: Session, key: str, *, now: datetime, window: int) -> None:
        name, stamp = self.prefix + key, now.timestamp()
        try:
            pipe = self.client.pipeline()
            pipe.zadd(name, {f"{stamp!r} {uuid.uuid4().hex}": stamp})
            pipe.zremrangebyscore(name, "-inf", stamp - window)
            pipe.expire(name, window + 1)
            pipe.execute()
        except self._errors as exc:
            log.warning("throttle.redis_unavailable", error=str(exc))
            self.fallback.add(session, key, now=now, window=window)


def _ceil_seconds(delta: float) -> int:
    return max(1, math.ceil(delta))


class Throttle:
    """The throttling rules and where the per-address counters live."""

    def __init__(self, policy: ThrottlePolicy | None = None, window: IpWindow | None = None):
        self.policy = policy or ThrottlePolicy()
        self.window: IpWindow = window or DatabaseWindow()

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttle:
        window: IpWindow = (
            RedisWindow(settings.redis_url) if settings.redis_url else DatabaseWindow()
        )
        return cls(ThrottlePolicy.from_settings(settings), window)

    def check(
        self, session: Session, *, user_id: int | None, ip: str | None, now: datetime | None = None
    ) -> Verdict:
        """May an attempt for this account (None: unknown user) from this address be checked?"""
        now = now or datetime.now(UTC)
        waits: list[tuple[int, Reason]] = []
        if user_id is not None:
            row = session.execute(
                select(
                    LoginThrottle.failures,
                    LoginThrottle.last_failure_at,
                    LoginThrottle.locked_until,
                    LoginThrottle.locked_until_unlocked,
                ).where(LoginThrottle.user_id == user_id)
            ).one_or_none()
            if row is not None:
                failures, last_failure_at, locked_until, until_unlocked = row
                if until_unlocked:
                    return Verdict(False, None, True, "account_locked")
                if locked_until is not None and locked_until > now:
                    seconds = _ceil_seconds((locked_until - now).total_seconds())
                    return Verdict(False, seconds, True, "account_locked")
                delay = self.policy.delay(failures)
                if delay and last_failure_at is not None:
                    wait = (last_failure_at + timedelta(seconds=delay) - now).total_seconds()
                    if wait > 0:
                        waits.append((_ceil_seconds(wait), "account_delay"))
        if ip:
            limit = self.policy.ip_max_failures
            hits = self.window.recent(
                session, f"ip:{ip}", now=now, window=self.policy.ip_window, limit=limit
            )
            if len(hits) >= limit:
                wait = hits[limit - 1] + self.policy.ip_window - now.timestamp()
                waits.append((_ceil_seconds(wait), "ip_limited"))
        if not waits:
            return ALLOWED
        seconds, reason = max(waits)
        return Verdict(False, seconds, False, reason)

    def record_failure(
        self, session: Session, *, user_id: int | None, ip: str | None, now: datetime | None = None
    ) -> Verdict:
        """Count a checked attempt that failed; returns the verdict for the next attempt."""
        now = now or datetime.now(UTC)
        if ip:
            self.window.add(session, f"ip:{ip}", now=now, window=self.policy.ip_window)
        if user_id is not None:
            self._count_account_failure(session, user_id, ip, now)
        return self.check(session, user_id=user_id, ip=ip, now=now)

    def _count_account_failure(
        self, session: Session, user_id: int, ip: str | None, now: datetime
    ) -> None:
        table = LoginThrottle.__table__.c
        statement = upsert(session, LoginThrottle).values(
            user_id=user_id, failures=1, last_failure_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.user_id],
            set_={"failures": table.failures + 1, "last_failure_at": now},
            where=(~table.locked_until_unlocked)
            & (table.locked_until.is_(None) | (table.locked_until <= now)),
        ).returning(table.failures)
        failures = session.execute(statement).scalar_one_or_none()
        if failures is None:  # locked: not counted
            return
        policy = self.policy
        if failures >= policy.max_failures:
            session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.user_id == user_id)
                .values(locked_until_unlocked=True)
                .execution_options(synchronize_session=False)
            )
            events.record(
                session,
                "auth.account_locked",
                outcome="locked",
                user_id=user_id,
                ip=ip,
                failures=failures,
                until="unlock",
            )
        elif failures % policy.lock_after == 0:
            until = now + timedelta(seconds=policy.lock_duration)
            session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.user_id == user_id)
                .values(locked_until=until)
                .execution_options(synchronize_session=False)
            )
            events.record(
                session,
                "auth.account_locked",
                outcome="locked",
                user_id=user_id,
                ip=ip,
                failures=failures,
                until=until.isoformat(),
            )

    def record_success(
        self, session: Session, *, user_id: int, ip: str | None = None, now: datetime | None = None
    ) -> None:
        """A successful sign-in clears the account's consecutive failures."""
        session.execute(
            delete(LoginThrottle)
            .where(LoginThrottle.user_id == user_id)
            .execution_options(synchronize_session=False)
        )

    def unlock(self, session: Session, user_id: int) -> bool:
        """Clear an account's failures and lock; True if it had any."""
        result = session.execute(
            delete(LoginThrottle)
            .where(LoginThrottle.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def state(self, session: Session, user_id: int, *, now: datetime | None = None) -> str:
        """`ok`, `delayed`, `locked` or `locked_until_unlock`: for operators."""
        verdict = self.check(session, user_id=user_id, ip=None, now=now)
        if verdict.locked:
            return "locked_until_unlock" if verdict.retry_after is None else "locked"
        return "ok" if verdict.allowed else "delayed"


DEFAULT = Throttle()


def check(
    session: Session,
    *,
    user_id: int | None,
    ip: str | None,
    now: datetime | None = None,
    throttle: Throttle | None = None,
) -> Verdict:
    """`Throttle.check` with default rules and database counters (pass `runtime.throttle` to
    follow the settings, Redis included)."""
    return (throttle or DEFAULT).check(session, user_id=user_id, ip=ip, now=now)


def record_failure(
    session: Session,
    *,
    user_id: int | None,
    ip: str | None,
    now: datetime | None = None,
    throttle: Throttle | None = None,
) -> Verdict:
    return (throttle or DEFAULT).record_failure(session, user_id=user_id, ip=ip, now=now)


def record_success(
    session: Session,
    *,
    user_id: int,
    ip: str | None = None,
    now: datetime | None = None,
    throttle: Throttle | None = None,
) -> None:
    (throttle or DEFAULT).record_success(session, user_id=user_id, ip=ip, now=now)


def unlock(session: Session, user_id: int) -> bool:
    return DEFAULT.unlock(session, user_id)
