"""Delivering back-channel logout tokens: all e-services at once, each with a short timeout.

A delivery is claimed and its token signed in one committed transaction, POSTed
(`logout_token=...`) through the guarded outbound calls of `idp.oauth.fetch` (no redirects
followed, never to a non-public address unless the settings allow it, the whole call within
`backchannel_logout_timeout`), and its outcome recorded in another. `2xx` is delivered; a
network error, a timeout, `5xx`, `408` or `429` is retried later; any other answer (a
redirect, `400` "token not valid") or a refused address will not improve by itself: it is
given up at once, with an event for the operators.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from idp.background import every, run_now, running
from idp.db.models import Client, LogoutDelivery
from idp.logging import get_logger
from idp.logout import outbox
from idp.logout.token import logout_token
from idp.oauth import fetch
from idp.oauth.keys import KeyRingError
from idp.runtime import Runtime

log = get_logger("idp.logout")
RETRY_STATUSES = frozenset({408, 425, 429})
MAX_PARALLEL = 20


@dataclass(frozen=True)
class Job:
    delivery_id: int
    client_id: str
    uri: str
    token: str


@dataclass(frozen=True)
class Result:
    delivery_id: int
    ok: bool
    error: str = ""
    retry: bool = True


@dataclass
class Report:
    delivered: int = 0
    retrying: int = 0
    abandoned: int = 0
    made_due: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "retrying": self.retrying,
            "abandoned": self.abandoned,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _prepare(runtime: Runtime, ids: list[int], now: datetime) -> tuple[list[Job], Report]:
    """Claim the deliveries and sign their tokens (committed before anything is sent)."""
    jobs: list[Job] = []
    report = Report()
    settings = runtime.settings
    runtime.keyring.refresh()
    with runtime.db.transaction() as db:
        for delivery_id in ids:
            if not outbox.claim(db, delivery_id, now, settings):
                continue
            row = db.get(LogoutDelivery, delivery_id)
            assert row is not None
            db.refresh(row)
            client = db.scalar(select(Client).where(Client.client_id == row.client_id))
            if client is None or client.disabled or not client.backchannel_logout_uri:
                outbox.failed(db, row, now, settings, error="e-service gone", retry=False)
                report.abandoned += 1
                continue
            try:
                token = logout_token(
                    runtime.keyring,
                    issuer=settings.issuer,
                    client=client,
                    sid=row.sid,
                    sub=row.sub,
                    default_alg=settings.default_signing_alg,
                    now=now.timestamp(),
                )
            except KeyRingError as exc:
                outbox.failed(db, row, now, settings, error=str(exc), retry=True)
                report.retrying += 1
                continue
            jobs.append(Job(row.id, client.client_id, client.backchannel_logout_uri, token))
    return jobs, report


async def _send(job: Job, runtime: Runtime) -> Result:
    try:
        answer = await fetch.call(
            "POST",
            job.uri,
            runtime.settings,
            deadline=runtime.settings.backchannel_logout_timeout,
            form={"logout_token": job.token},
            headers={"Cache-Control": "no-store"},
            max_bytes=0,
        )
    except fetch.Refused as exc:
        return Result(job.delivery_id, False, f"refused: {exc}", retry=False)
    except fetch.FetchError as exc:
        return Result(job.delivery_id, False, f"not reached: {exc}")
    status = answer.status
    if 200 <= status < 300:
        return Result(job.delivery_id, True)
    retry = status >= 500 or status in RETRY_STATUSES
    return Result(job.delivery_id, False, f"answered {status}", retry=retry)


def _record(runtime: Runtime, results: list[Result], now: datetime, report: Report) -> None:
    with runtime.db.transaction() as db:
        for result in results:
            row = db.get(LogoutDelivery, result.delivery_id)
            if row is None:
                continue
            if result.ok:
                outbox.delivered(db, row, now)
                report.delivered += 1
            elif outbox.failed(
                db, row, now, runtime.settings, error=result.error, retry=result.retry
            ):
                report.abandoned += 1
            else:
                report.retrying += 1


async def deliver(runtime: Runtime, ids: list[int], *, now: datetime | None = None) -> Report:
    """Try these deliveries now, concurrently. Those another process holds are left to it."""
    if not ids:
        return Report()
    now = now or _now()
    jobs, report = await run_in_threadpool(_prepare, runtime, ids, now)
    if jobs:
        limit = asyncio.Semaphore(MAX_PARALLEL)

        async def one(job: Job) -> Result:
            async with limit:
                return await _send(job, runtime)

        results = await asyncio.gather(*(one(job) for job in jobs))
        for job, result in zip(jobs, results, strict=True):
            if not result.ok:
                log.warning(
                    "back-channel logout not delivered",
                    client_id=job.client_id,
                    error=result.error,
                    retry=result.retry,
                )
        await run_in_threadpool(_record, runtime, list(results), now, report)
    return report


def _due(runtime: Runtime, now: datetime, limit: int, retry_now: bool) -> tuple[list[int], int]:
    with runtime.db.transaction() as db:
        moved = outbox.make_due(db, now, runtime.settings) if retry_now else 0
        return outbox.due(db, now, limit=limit), moved


async def deliver_due(
    runtime: Runtime,
    *,
    now: datetime | None = None,
    retry_now: bool = False,
    limit: int = 100,
) -> Report:
    """Deliver what is due (with `retry_now`, everything waiting): the worker's and the
    janitor's step. Repeats while full batches come back."""
    now = now or _now()
    total = Report()
    while True:
        ids, moved = await run_in_threadpool(_due, runtime, now, limit, retry_now)
        retry_now = False
        total.made_due += moved
        report = await deliver(runtime, ids, now=now)
        total.delivered += report.delivered
        total.retrying += report.retrying
        total.abandoned += report.abandoned
        if len(ids) < limit:
            return total


def deliver_due_now(runtime: Runtime, **options: Any) -> Report:
    """`deliver_due` for synchronous callers (the CLI)."""
    return run_now(deliver_due(runtime, **options))


async def run_worker(runtime: Runtime) -> None:
    """Poll the outbox every `backchannel_logout_poll_interval` seconds until cancelled."""
    await every(
        runtime.settings.backchannel_logout_poll_interval,
        lambda: deliver_due(runtime),
        failure="logout outbox check failed",
    )


@contextlib.asynccontextmanager
async def worker(runtime: Runtime) -> AsyncIterator[None]:
    """The outbox worker for the app's lifespan (nothing when the interval is 0)."""
    enabled = runtime.settings.backchannel_logout_poll_interval > 0
    async with running(run_worker(runtime) if enabled else None, name="logout-outbox"):
        yield
