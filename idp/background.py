"""Background tasks that live as long as the application (the lifespan), and coroutines run
to completion for synchronous callers (the command line)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from idp.logging import get_logger

log = get_logger("idp.background")
T = TypeVar("T")


def run_now(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` to its end for a synchronous caller (the CLI): on an event loop of its own,
    in a thread of its own, so it works whether or not the caller's thread runs a loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


async def every(interval: float, step: Callable[[], Awaitable[Any]], *, failure: str) -> None:
    """Run `step` every `interval` seconds (with jitter, so that several processes spread out)
    until cancelled. A failing step (the database briefly away) is logged as `failure` and
    tried again next time."""
    while True:
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(failure, error=type(exc).__name__)


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
