"""The database engine and sessions, the same for SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from idp.files import private_file, private_folder, restrict


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


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


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


def build_engine(
    url: str,
    *,
    connect_timeout: float = 3.0,
    statement_timeout: float = 10.0,
    pool_size: int = 10,
) -> Engine:
    """An engine that fails fast when the database is away and recovers when it is back."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _private_sqlite_file(parsed.database)
        engine = create_engine(
            url,
            connect_args={"timeout": connect_timeout, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options = f"-c statement_timeout={int(statement_timeout * 1000)}"
    existing = parsed.query.get("options")
    if existing:
        options = f"{existing} {options}"
    engine = create_engine(
        parsed.set(query={**parsed.query, "options": options}),
        connect_args={"connect_timeout": max(1, round(connect_timeout))},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout,
        pool_recycle=1800,
    )
    _ping_rested_connections(engine)
    return engine


class Database:
    """One engine and its session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Database:
        return cls(build_engine(url, **options))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed at the end, or rolled back whole on any error."""
        try:
            with self.sessions.begin() as session:
                yield session
        except OperationalError as exc:
            if not _is_outage(exc):
                raise
            raise _unavailable(exc) from exc

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
