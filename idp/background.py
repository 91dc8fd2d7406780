"""Background tasks that live as long as the application (the lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None] | None, *, name: str) -> AsyncIterator[None]:
    """Run `work` as a task while the block runs (nothing when it is None), then cancel it and
    wait until it has stopped."""
    task = asyncio.create_task(work, name=name) if work is not None else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
