"""Running the audit sealer: in every serving process every `audit_seal_interval` seconds,
and on demand (`idp audit seal`, `idp janitor`, before verifying, pruning and counting).

Each round seals in transactions of at most `chain.BATCH` entries, so the head's lock is never
held for long; a background round skips at once when another process is sealing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from idp.audit import chain
from idp.background import every, running
from idp.db import Database
from idp.logging import get_logger
from idp.runtime import Runtime

log = get_logger("idp.audit")


def seal_all(db: Database, *, wait: bool = True) -> int:
    """Seal every entry committed so far. Returns how many."""
    total = 0
    while True:
        with db.transaction() as session:
            sealed = chain.seal(session, limit=chain.BATCH, wait=wait)
        total += sealed
        if sealed < chain.BATCH:
            return total


async def run_sealer(runtime: Runtime) -> None:
    """Seal every `audit_seal_interval` seconds until cancelled."""
    await every(
        runtime.settings.audit_seal_interval,
        lambda: asyncio.to_thread(seal_all, runtime.db, wait=False),
        failure="audit sealing failed",
    )


@contextlib.asynccontextmanager
async def worker(runtime: Runtime) -> AsyncIterator[None]:
    """The sealer for the app's lifespan (nothing when the interval is 0); seals what is left
    when the process stops."""
    enabled = runtime.settings.audit_seal_interval > 0
    try:
        async with running(run_sealer(runtime) if enabled else None, name="audit-sealer"):
            yield
    finally:
        if enabled:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(seal_all, runtime.db, wait=False)
