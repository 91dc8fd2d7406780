"""The database engine and sessions, the same for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from starlette.concurrency import run_in_threadpool

from idp.files import private_file, private_folder, restrict

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database cannot be reached; callers answer 503 and retry later."""


_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error")


def _is_outage(exc: OperationalError) -> bool:
    """Connection trouble, as opposed to a query the schema cannot answer."""
    message = str(exc.orig).lower()
    if "sqlite" in type(exc.orig).__module__:
        return any(text in message for text in _SQLITE_UNAVAILABLE)
    return True


def _unavailable(exc: OperationalError) -> DatabaseUnavailable:
    return DatabaseUnavailable(str(exc.orig).splitlines()[0] if exc.orig else "")


WRITE = "idp_write"
"""Execution option of the connections of `Database.transaction()`: SQLite begins them with
`BEGIN IMMEDIATE` (the write lock first), so that a transaction that read and then writes never
fails half-way on the upgrade of a read lock."""


def _sqlite_setup(busy_timeout: float, synchronous: str) -> Any:
    def connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The driver's own transaction handling begins a transaction only before a write, so a
        # read-then-write transaction would read outside it. We begin every transaction
        # ourselves (`_sqlite_begin`), as SQLAlchemy's pysqlite documentation recommends.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    return connect


def _sqlite_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get(WRITE)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class WriterGate:
    """One write transaction at a time in this process (SQLite).

    SQLite lets one writer in at a time. Without a gate, the threads of one process would each
    wait in SQLite's busy handler, which sleeps and retries: under a crowd some of them keep
    missing their turn until the busy timeout fails them. Here they queue on a lock instead,
    asleep until it is their turn, and SQLite's busy wait is left for other processes (a second
    worker, the `idp` command). A writer that cannot get in within `timeout` seconds gets
    `DatabaseUnavailable` (the citizen is asked to try again), and a thread that already holds
    the gate cannot take it a second time: that would wait for itself.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._holder = threading.local()

    @contextmanager
    def hold(self) -> Iterator[None]:
        if getattr(self._holder, "held", False):
            raise RuntimeError("a write transaction is already open in this thread")
        if not self._lock.acquire(timeout=self.timeout):
            raise DatabaseUnavailable("the database is busy")
        self._holder.held = True
        try:
            yield
        finally:
            self._holder.held = False
            self._lock.release()


def _private_sqlite_file(database: str | None) -> None:
    """The database file readable by its owner only, before SQLite opens it: SQLite gives its
    write-ahead log and shared-memory files (`-wal`, `-shm`) the database file's mode. A new
    folder for it is 0700; an older, looser file and its companions are tightened."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    private_folder(path.parent)
    private_file(path)
    for companion in ("-wal", "-shm", "-journal"):
        restrict(path.with_name(path.name + companion))


# A pooled connection that has rested longer than this is tested before use. One in steady use
# is not: a test per request would add a round trip to every request. A connection that breaks
# while in use fails its request (503) and SQLAlchemy then replaces every pooled connection.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_rested_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling, but only for connections that rested in the pool."""

    @event.listens_for(engine, "checkin")
    def _rest(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["rested_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _test(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        rested_at = record.info.get("rested_at")
        if rested_at is None or time.monotonic() - rested_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(str(exc)) from exc


def _postgresql_options(
    parsed: URL, connect_timeout: float, statement_timeout: float, pool_size: int
) -> tuple[URL, dict[str, Any]]:
    """The URL (with the statement timeout) and pool options of a PostgreSQL engine."""
    options = f"-c statement_timeout={int(statement_timeout * 1000)}"
    existing = parsed.query.get("options")
    if existing:
        options = f"{existing} {options}"
    return parsed.set(query={**parsed.query, "options": options}), {
        "connect_args": {"connect_timeout": max(1, round(connect_timeout))},
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_timeout": connect_timeout,
        "pool_recycle": 1800,
    }


def build_async_engine(
    url: str,
    *,
    connect_timeout: float = 3.0,
    statement_timeout: float = 10.0,
    pool_size: int = 10,
    **_sqlite_options: Any,
) -> AsyncEngine | None:
    """On PostgreSQL, an engine of psycopg's asynchronous connections with the same limits as
    `build_engine`'s, for the requests that run in the event loop (`Database.run`); on SQLite,
    None (its driver has no asynchronous mode: those requests run in a thread)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    target, options = _postgresql_options(parsed, connect_timeout, statement_timeout, pool_size)
    engine = create_async_engine(target.set(drivername="postgresql+psycopg"), **options)
    _ping_rested_connections(engine.sync_engine)
    return engine


def build_engine(
    url: str,
    *,
    connect_timeout: float = 3.0,
    statement_timeout: float = 10.0,
    pool_size: int = 10,
    sqlite_synchronous: str = "normal",
) -> Engine:
    """An engine that fails fast when the database is away and recovers when it is back.

    On SQLite, `statement_timeout` is how long a writer waits for another process's write
    lock (the busy timeout)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _private_sqlite_file(parsed.database)
        engine = create_engine(
            url,
            connect_args={"timeout": statement_timeout, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_setup(statement_timeout, sqlite_synchronous))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    target, pool_options = _postgresql_options(
        parsed, connect_timeout, statement_timeout, pool_size
    )
    engine = create_engine(target, **pool_options)
    _ping_rested_connections(engine)
    return engine


class _EventLoopEngine:
    """The asynchronous engine of one event loop, its sessions, and as many turns as the pool
    keeps connections: transactions beyond that wait here, as request threads wait for a
    thread, instead of opening and closing connections beyond the pool."""

    def __init__(self, engine: AsyncEngine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.loop = loop
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.turns = asyncio.Semaphore(engine.sync_engine.pool.size())  # type: ignore[attr-defined]


class Database:
    """One engine and its session factories: `transaction()` to write, `read()` to read, and
    `run()` for a transaction awaited from the event loop."""

    def __init__(
        self,
        engine: Engine,
        *,
        write_timeout: float = 10.0,
        open_async_engine: Callable[[], AsyncEngine | None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._writers = sessionmaker(
            engine, expire_on_commit=False, execution_options={WRITE: True}
        )
        self.gate = WriterGate(write_timeout) if engine.dialect.name == "sqlite" else None
        self._open_async_engine = open_async_engine
        self._loop: _EventLoopEngine | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Database:
        return cls(
            build_engine(url, **options),
            write_timeout=options.get("statement_timeout", 10.0),
            open_async_engine=lambda: build_async_engine(url, **options),
        )

    async def start(self) -> None:
        """Open the event loop's engine (PostgreSQL) for `run()`, bound to the running loop:
        an application's lifespan calls it at startup, `stop()` at shutdown."""
        engine = self._open_async_engine()
        if engine is not None:
            self._loop = _EventLoopEngine(engine, asyncio.get_running_loop())

    async def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            await loop.engine.dispose()

    @property
    def async_engine(self) -> AsyncEngine | None:
        return self._loop.engine if self._loop is not None else None

    @property
    def engines(self) -> list[Engine]:
        """Every engine of this database: the threads' and the event loop's (as its synchronous
        facade, the one events are listened to on)."""
        found = [self.engine]
        if self._loop is not None:
            found.append(self._loop.engine.sync_engine)
        return found

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _writer(self) -> AbstractContextManager[None]:
        return self.gate.hold() if self.gate is not None else nullcontext()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed at the end, or rolled back whole on any error.

        Keep it short: nothing slow (password hashing, pages, calls to other hosts, email)
        inside; on SQLite it holds the one write lock from its first statement to its end."""
        try:
            with self._writer(), self._writers.begin() as session:
                yield session
        except OperationalError as exc:
            if not _is_outage(exc):
                raise
            raise _unavailable(exc) from exc

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction, as `transaction()`, awaited from the event loop.

        On PostgreSQL, once `start()` has opened the event loop's engine, it runs in the event
        loop itself, with an asynchronous connection: SQLAlchemy suspends it at each round trip
        to the database (a greenlet) and other requests go on meanwhile, with no thread
        hand-off. `work` must therefore do nothing slow but the database (no password hashing,
        no call to another host). On SQLite, or before `start()`, or from another event loop,
        it runs in a thread of the pool, in `transaction()`."""
        loop = self._loop
        if loop is None or loop.loop is not asyncio.get_running_loop():
            return await run_in_threadpool(self._in_transaction, work)
        try:
            async with loop.turns, loop.sessions.begin() as session:
                return await session.run_sync(work)
        except OperationalError as exc:
            if not _is_outage(exc):
                raise
            raise _unavailable(exc) from exc

    def _in_transaction(self, work: Callable[[Session], T]) -> T:
        with self.transaction() as session:
            return work(session)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only."""
        try:
            with self.sessions() as session:
                yield session
        except OperationalError as exc:
            if not _is_outage(exc):
                raise
            raise _unavailable(exc) from exc

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise DatabaseUnavailable(str(exc.orig).splitlines()[0] if exc.orig else "") from exc

    def dispose(self) -> None:
        self.engine.dispose()
