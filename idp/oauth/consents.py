"""Consents: what a citizen agreed an e-service may receive, remembered per e-service and
set of scopes and claims, until the citizen withdraws it (the account pages list them)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import events
from idp.db.models import Consent, TokenGrant
from idp.oauth import tokens


def _scopes(scope: str) -> list[str]:
    return sorted(set(scope.split()))


def covers(db: Session, user_id: int, client_id: str, scope: str, claims: list[str]) -> bool:
    """Whether a live consent covers all of `scope` and `claims`."""
    wanted_scopes, wanted_claims = set(scope.split()), set(claims)
    for consent in active(db, user_id, client_id):
        if wanted_scopes <= set(consent.scope.split()) and wanted_claims <= set(consent.claims):
            return True
    return False


def active(db: Session, user_id: int, client_id: str | None = None) -> list[Consent]:
    query = select(Consent).where(Consent.user_id == user_id, Consent.revoked_at.is_(None))
    if client_id is not None:
        query = query.where(Consent.client_id == client_id)
    return list(db.scalars(query.order_by(Consent.created_at)))


def grant(db: Session, user_id: int, client_id: str, scope: str, claims: list[str]) -> Consent:
    """Record a consent; an existing one for exactly this set is reused."""
    scopes = " ".join(_scopes(scope))
    for consent in active(db, user_id, client_id):
        if consent.scope == scopes and sorted(consent.claims) == sorted(claims):
            return consent
    consent = Consent(
        user_id=user_id, client_id=client_id, scope=scopes, claims=sorted(set(claims))
    )
    db.add(consent)
    db.flush()
    events.record(
        db, "consent.granted", user_id=user_id, client_id=client_id, scope=scopes, claims=claims
    )
    return consent


def revoke(db: Session, user_id: int, client_id: str) -> int:
    """Withdraw every consent a citizen gave an e-service, and the tokens it holds from them;
    returns how many consents."""
    now = datetime.now(UTC)
    consents = active(db, user_id, client_id)
    for consent in consents:
        consent.revoked_at = now
    live = select(TokenGrant.id).where(
        TokenGrant.user_id == user_id,
        TokenGrant.client_id == client_id,
        TokenGrant.revoked_at.is_(None),
    )
    for grant_id in list(db.scalars(live)):
        tokens.revoke_grant(db, grant_id, reason="consent_withdrawn")
    if consents:
        events.record(db, "consent.revoked", user_id=user_id, client_id=client_id)
    return len(consents)
