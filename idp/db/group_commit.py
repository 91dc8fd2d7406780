"""Group commit: one writer per process commits the rows of concurrent requests together.

A request that defers its rows (`idp.db.deferred`) hands them to `GroupCommit.commit` and is
answered only when that returns, i.e. once the transaction holding them has committed: nothing
is answered that a `kill -9` of the process could lose. The writer (a thread, started with the
first unit) waits up to `wait` seconds after the first unit of a batch for others to join it, or
until the batch holds `max_rows` rows, then writes the batch in one transaction of the usual kind
(`Database.transaction`: SQLite's write lock and the process's writer gate, PostgreSQL's
statement timeout): one multi-row INSERT per table, grants first (their ids go to the tokens of
their unit), rows of a table in the order the requests gave them, so events get their ids, and
later their place in the audit chain, in that order. A batch that fails writes nothing, and each
of its requests gets `DatabaseUnavailable` (503, try again).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from concurrent.futures import Future
from functools import cache
from typing import Any

from sqlalchemy import Insert, Table, insert
from sqlalchemy.orm import Session

from idp.db.deferred import DeferredRows
from idp.db.engine import Database, DatabaseUnavailable
from idp.db.inserts import row_values
from idp.db.models import Base, TokenGrant
from idp.logging import get_logger
from idp.stats import metrics

log = get_logger("idp.db.group_commit")

TABLE_ORDER = {table.name: index for index, table in enumerate(Base.metadata.sorted_tables)}


class GroupCommit:
    """The writer of one process. `max_rows` 0: each unit is written by its own request."""

    def __init__(self, db: Database, *, max_rows: int, wait: float) -> None:
        self.db = db
        self.max_rows = max_rows
        self.wait = wait
        self._queue: deque[tuple[DeferredRows, Future[None]]] = deque()
        self._queued_rows = 0
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    @property
    def enabled(self) -> bool:
        return self.max_rows > 0

    async def commit(self, unit: DeferredRows) -> None:
        """Return once `unit` is committed; raise `DatabaseUnavailable` if its batch failed."""
        if not len(unit):
            return
        await asyncio.wrap_future(self.submit(unit))

    def submit(self, unit: DeferredRows) -> Future[None]:
        done: Future[None] = Future()
        with self._ready:
            if self._closing:
                done.set_exception(DatabaseUnavailable("the process is stopping"))
                return done
            self._queue.append((unit, done))
            self._queued_rows += len(unit)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="idp-group-commit", daemon=True
                )
                self._thread.start()
            self._ready.notify()
        return done

    def close(self) -> None:
        """Write what is queued, then stop the writer (a later unit starts it again)."""
        with self._ready:
            self._closing = True
            thread = self._thread
            self._ready.notify()
        if thread is not None:
            thread.join()
        with self._ready:
            self._closing = False
            self._thread = None

    # The writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            # A request that went away before its batch (a client that hung up) is not waited
            # for; its rows are written all the same, whole, like any other unit's.
            waiting = [done for _unit, done in batch if done.set_running_or_notify_cancel()]
            try:
                self._write([unit for unit, _done in batch])
            except Exception as exc:
                log.error("group commit failed", units=len(batch), error=_first_line(exc))
                failure = (
                    exc
                    if isinstance(exc, DatabaseUnavailable)
                    else DatabaseUnavailable("the batch could not be written")
                )
                for done in waiting:
                    done.set_exception(failure)
            else:
                for done in waiting:
                    done.set_result(None)
                _count([unit for unit, _done in batch])

    def _next_batch(self) -> list[tuple[DeferredRows, Future[None]]] | None:
        with self._ready:
            while not self._queue:
                if self._closing:
                    return None
                self._ready.wait()
            deadline = time.monotonic() + self.wait
            while self._queued_rows < self.max_rows and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            batch = [self._queue.popleft()]
            rows = len(batch[0][0])
            while self._queue and rows + len(self._queue[0][0]) <= self.max_rows:
                batch.append(self._queue.popleft())
                rows += len(batch[-1][0])
            self._queued_rows -= rows
            return batch

    def _write(self, units: list[DeferredRows]) -> None:
        with self.db.transaction() as session:
            write_units(session, units)


def _count(units: list[DeferredRows]) -> None:
    """The committed events' counts (`idp.stats.metrics`)."""
    try:
        for unit in units:
            for observed in unit.observed:
                metrics.observe_event(*observed)
    except Exception as exc:  # a count lost is no reason to stop writing
        log.error("events not counted", error=_first_line(exc))


def write_units(session: Session, units: list[DeferredRows]) -> None:
    """INSERT the rows of `units` in the session's transaction: one statement per table."""
    connection = session.connection()
    owners = [(unit, unit.grant) for unit in units if unit.grant is not None]
    if owners:
        grant_ids = connection.execute(
            _statement(_table(TokenGrant), returning=True),
            [row_values(grant) for _unit, grant in owners],
        ).scalars()
        for (unit, grant), grant_id in zip(owners, grant_ids, strict=True):
            grant.id = grant_id
            for row in unit.rows:
                if hasattr(row, "grant_id") and row.grant_id is None:
                    row.grant_id = grant_id
    groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    tables: dict[str, Table] = {}
    for unit in units:
        for row in unit.rows:
            table = _table(type(row))
            values = row_values(row)
            tables[table.name] = table
            groups.setdefault((table.name, tuple(values)), []).append(values)
    for (name, _columns), rows in sorted(groups.items(), key=lambda g: TABLE_ORDER[g[0][0]]):
        connection.execute(_statement(tables[name], returning=False), rows)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@cache
def _statement(table: Table, *, returning: bool) -> Insert:
    """Given a list of rows, SQLAlchemy renders one multi-row VALUES list ("insertmanyvalues")
    on PostgreSQL; SQLite runs the statement once per row, without a round trip. RETURNING is
    asked in the rows' order (grants: their ids go to their units)."""
    statement = insert(table)
    return statement.returning(table.c.id, sort_by_parameter_order=True) if returning else statement
