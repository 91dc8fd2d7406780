"""Counting the indicators in the background: in every serving process every
`stats_rollup_interval` seconds, so the dashboard is at most about that much behind.

One process counts at a time, across workers and machines, by the lock on the rollup's state
row (`idp.stats.rollup`); a round that finds it taken skips, as the audit sealer's does.
`idp janitor` and `idp stats rollup` still count, for installations that turn this off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from idp.background import every, running
from idp.runtime import Runtime
from idp.stats import rollup

BATCH = 5000  # smaller than the command's: each batch holds SQLite's write lock briefly


def count_now(runtime: Runtime) -> int:
    """One background round: count what is new, unless another process is at it."""
    return rollup.run(runtime, batch=BATCH, wait=False)


async def run_counter(runtime: Runtime) -> None:
    """Count every `stats_rollup_interval` seconds until cancelled."""
    await every(
        runtime.settings.stats_rollup_interval,
        lambda: asyncio.to_thread(count_now, runtime),
        failure="indicator rollup failed",
    )


@contextlib.asynccontextmanager
async def worker(runtime: Runtime) -> AsyncIterator[None]:
    """The counter for the app's lifespan (nothing when the interval is 0)."""
    enabled = runtime.settings.stats_rollup_interval > 0
    async with running(run_counter(runtime) if enabled else None, name="indicator-rollup"):
        yield
