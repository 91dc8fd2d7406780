"""Which e-services a single sign-on session served.

A row is written when an authorization code is issued under a session (exact: an e-service
that never received a code is not told; one that did is, even if it never redeemed it), and
read when the session ends.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.db.inserts import upsert
from idp.db.models import Client, SsoSession, SsoSessionClient
from idp.db.types import utcnow


def remember(db: Session, sso: SsoSession, client_id: str) -> None:
    """Record that `client_id` was signed in under `sso` (once per pair, race-free)."""
    values = {"session_id": sso.id, "client_id": client_id, "created_at": utcnow()}
    keys = ["session_id", "client_id"]
    db.execute(
        upsert(db, SsoSessionClient).values(values).on_conflict_do_nothing(index_elements=keys)
    )


def clients_of(db: Session, session_ids: Iterable[int]) -> list[Client]:
    """The enabled e-services that were signed in under any of these sessions."""
    ids = list(session_ids)
    if not ids:
        return []
    client_ids = select(SsoSessionClient.client_id).where(SsoSessionClient.session_id.in_(ids))
    rows = db.scalars(
        select(Client).where(Client.client_id.in_(client_ids)).order_by(Client.client_id)
    )
    return [client for client in rows if not client.disabled]
