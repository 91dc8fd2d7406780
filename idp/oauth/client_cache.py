"""The e-services (`clients` rows) a process has looked up recently, so that the token,
introspection and revocation endpoints do not read the same row on every request.

A row is kept for `client_cache_seconds` at most. A change committed through the ORM in this
process (the admin console, the admin API, the CLI, registration) forgets the rows it touched at
once, in every cache of the process on the same database; other processes see the change when
their copy expires. So disabling an e-service or rotating its secret takes effect everywhere
within `client_cache_seconds` (documented in docs/security.md). Cached rows are detached
snapshots: read, never changed or added to a session.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import ORMExecuteState, Session

from idp.db.models import Client

MAX_ENTRIES = 10_000
_ALL = "*"
_TOUCHED = "idp.client_cache.touched"


class ClientCache:
    """client_id -> (expiry on the monotonic clock, detached `Client` row)."""

    def __init__(self, engine: Engine, ttl: float) -> None:
        self.ttl = ttl
        self.url = engine.url.render_as_string(hide_password=False)
        self._rows: dict[str, tuple[float, Client]] = {}
        self._lock = threading.Lock()
        _REGISTRY[engine] = self

    def get(self, db: Session, client_id: str) -> Client | None:
        """The row for `client_id` (disabled ones too), from the cache or from `db`."""
        now = time.monotonic()
        if self.ttl > 0:
            found = self._rows.get(client_id)
            if found is not None and found[0] > now:
                return found[1]
        row = db.scalar(select(Client).where(Client.client_id == client_id))
        if row is None or self.ttl <= 0 or db.new or db.dirty or db.deleted:
            return row  # not cached while the session holds changes of its own
        db.expunge(row)
        with self._lock:
            if len(self._rows) >= MAX_ENTRIES:
                self._rows.clear()
            self._rows[client_id] = (now + self.ttl, row)
        return row

    def forget(self, client_ids: set[str]) -> None:
        with self._lock:
            if _ALL in client_ids:
                self._rows.clear()
            for client_id in client_ids:
                self._rows.pop(client_id, None)


_REGISTRY: weakref.WeakKeyDictionary[Engine, ClientCache] = weakref.WeakKeyDictionary()


def for_engine(engine: Engine, ttl: float) -> ClientCache:
    """The cache of the process for this engine."""
    cache = _REGISTRY.get(engine)
    return cache if cache is not None else ClientCache(engine, ttl)


def _touched(session: Session) -> set[str]:
    found: set[str] = session.info.setdefault(_TOUCHED, set())
    return found


def _after_flush(session: Session, _context: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Client):
            _touched(session).add(obj.client_id)


def _bulk(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        mapper.class_ is Client for mapper in state.all_mappers
    ):
        _touched(state.session).add(_ALL)


def _after_commit(session: Session) -> None:
    ids = session.info.pop(_TOUCHED, None)
    if not ids:
        return
    bind = session.get_bind()
    url = bind.engine.url.render_as_string(hide_password=False)
    for cache in list(_REGISTRY.values()):
        if cache.url == url:
            cache.forget(ids)


def install() -> None:
    """Forget changed e-services on every commit of every session (idempotent)."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _bulk)
        event.listen(Session, "after_commit", _after_commit)


install()
