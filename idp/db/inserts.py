"""Rows written with one Core INSERT instead of the ORM's unit of work.

On the token path the unit of work (change tracking, topological sort, identity map) costs
more CPU than the database round trip it ends in. `insert_now` writes a new mapped object at
once, in the session's transaction, and leaves it transient: it reads like any row, is not
tracked, and is never flushed again. Use it for rows that are written once and not changed in
the same transaction (tokens, grants, events). In a session marked by `idp.db.deferred.defer_rows`
the row is kept for the group commit instead (its generated `id` stays unset).
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Insert, Table, insert, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from idp.db.deferred import deferred
from idp.db.models import Base

Row = TypeVar("Row", bound=Base)


def insert_now(session: Session, row: Row, *, returning_id: bool = False) -> Row:
    """INSERT `row` now (column defaults apply to attributes left unset); with `returning_id`,
    set its generated primary key `id` from the same statement."""
    pending = deferred(session)
    if pending is not None:
        pending.add(row)  # written by the group commit, with the other requests' rows
        return row
    table = row.__table__
    assert isinstance(table, Table)
    values = row_values(row)
    # The values travel as parameters of a statement built once: SQLAlchemy then reuses its
    # compiled form instead of building and hashing new bound parameters on every call.
    result = session.connection().execute(_statement(table, returning_id), values)
    if returning_id:
        row.id = result.scalar_one()  # type: ignore[attr-defined]
    return row


def row_values(row: Base) -> dict[str, Any]:
    """The column values set on `row` (unset ones take their column's default)."""
    table = row.__table__
    assert isinstance(table, Table)
    given: dict[str, Any] = inspect(row).dict
    return {name: value for name, value in given.items() if name in table.c}


@cache
def _statement(table: Table, returning_id: bool) -> Insert:
    statement = insert(table)
    return statement.returning(table.c.id) if returning_id else statement


def upsert(session: Session, model: type[Base]) -> Any:
    """An INSERT into `model`'s table in the session's dialect, with its ON CONFLICT clauses
    (`on_conflict_do_nothing`, `on_conflict_do_update`): SQLite and PostgreSQL spell them
    alike."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)
