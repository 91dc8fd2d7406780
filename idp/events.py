"""Events: one row per authentication step, token, logout or admin action.

They feed the audit log, the indicators and the citizen's access history, and each is also
written to the log. Callers pass identifiers only, never a secret.

The events table is the audit log: append-only rows, each sealed into a hash chain shortly
after its transaction commits (`idp.audit.chain`), so an edited or deleted entry is detected by
`idp audit verify`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from idp.db.deferred import deferred
from idp.db.inserts import insert_now
from idp.db.models import Event
from idp.db.types import utcnow
from idp.logging import get_logger
from idp.stats import metrics

log = get_logger("idp.events")


def record(
    session: Session,
    type: str,
    *,
    outcome: str = "success",
    actor: str | None = None,
    user_id: int | None = None,
    client_id: str | None = None,
    ip: str | None = None,
    request_id: str | None = None,
    at: datetime | None = None,
    **data: Any,
) -> Event:
    """Add an event to the current transaction: it is stored only if the action is. `at` is
    now unless given (events imported from elsewhere)."""
    event = Event(
        at=at or utcnow(),
        type=type,
        outcome=outcome,
        actor=actor,
        user_id=user_id,
        client_id=client_id,
        ip=ip,
        request_id=request_id,
        data=data,
    )
    insert_now(session, event)  # written once, never changed: no unit of work
    pending = deferred(session)
    if pending is not None:
        pending.observe((type, outcome, client_id, data))  # counted once its batch commits
    else:
        metrics.observe_on_commit(session, type, outcome, client_id, data)
    log.info(type, outcome=outcome, actor=actor, user_id=user_id, client_id=client_id, **data)
    return event
