"""Rows a request leaves to the group commit (`idp.db.group_commit`) instead of writing them.

A session marked with `defer_rows` does not write what `idp.db.inserts.insert_now` is given:
the rows are kept, in order, as one *unit* for the process's writer, which writes the units of
concurrent requests together and commits them in one transaction. A unit opens at most one
grant; its rows that name no grant yet (`grant_id` unset) belong to that grant and get its id
when it is written. Events keep the counts they feed (`observe`) until the unit has committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from idp.db.models import Base, TokenGrant

DEFERRED = "idp_deferred_rows"

Observed = tuple[str, str, str | None, dict[str, Any]]


@dataclass
class DeferredRows:
    """One request's rows, written and committed all together or not at all."""

    rows: list[Base] = field(default_factory=list)
    grant: TokenGrant | None = None
    observed: list[Observed] = field(default_factory=list)

    def add(self, row: Base) -> None:
        if isinstance(row, TokenGrant):
            if self.grant is not None:
                raise RuntimeError("a deferred unit opens at most one grant")
            self.grant = row
            return
        self.rows.append(row)

    def observe(self, observed: Observed) -> None:
        self.observed.append(observed)

    def __len__(self) -> int:
        return len(self.rows) + (self.grant is not None)


def defer_rows(session: Session) -> DeferredRows:
    """Keep the rows `insert_now` is given in this session for the group commit."""
    pending = DeferredRows()
    session.info[DEFERRED] = pending
    return pending


def deferred(session: Session) -> DeferredRows | None:
    found: DeferredRows | None = session.info.get(DEFERRED)
    return found
