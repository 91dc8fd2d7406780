"""Ending single sign-on sessions and telling the e-services.

Refresh tokens: when one session is logged out, the grants issued under it are revoked unless
they were granted `offline_access` (Back-Channel Logout 1.0 §2.7: offline access is meant to
outlive the session). Signing out everywhere (all sessions ended) revokes every grant of the
citizen, offline access included. When the account's credentials change or it is recovered
(`end_everything`), codes not yet redeemed, sign-ins in progress and password-reset links go
too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import events
from idp.auth import interactions
from idp.auth.newpassword import void_reset_links
from idp.auth.sessions import end_all_sessions, end_session
from idp.db.models import Client, SsoSession, TokenGrant, User
from idp.logout import outbox, participants
from idp.oauth.claims import subject_for
from idp.oauth.tokens import expire_codes, revoke_grant

OFFLINE_ACCESS = "offline_access"


@dataclass(frozen=True)
class FrontChannel:
    """An e-service's front-channel logout page, to be loaded in a hidden frame."""

    name: str
    url: str


@dataclass
class Ended:
    """What a logout left to do in the browser and over the network."""

    sid: str | None = None
    frontchannel: list[FrontChannel] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)


def frontchannel_url(uri: str, issuer: str, sid: str) -> str:
    """`frontchannel_logout_uri` with `iss` and `sid` added to its query (§2)."""
    parts = urlsplit(uri)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("iss", issuer), ("sid", sid)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _subject(db: Session, user: User | None, client: Client) -> str | None:
    return subject_for(db, user, client) if user is not None else None


def log_out(
    db: Session,
    sso: SsoSession,
    *,
    issuer: str,
    initiator: str | None,
    reason: str = "logout",
) -> Ended:
    """End one session: revoke its (online) grants, queue a back-channel logout for every
    e-service it served and list their front-channel pages. One transaction, the caller's."""
    now = datetime.now(UTC)
    served = participants.clients_of(db, [sso.id])
    end_session(db, sso, reason=reason)
    grants = db.scalars(
        select(TokenGrant).where(TokenGrant.sid == sso.sid, TokenGrant.revoked_at.is_(None))
    )
    for grant in list(grants):
        if OFFLINE_ACCESS not in grant.scope.split():
            revoke_grant(db, grant.id, reason=reason)
    user = db.get(User, sso.user_id)
    ended = Ended(sid=sso.sid)
    for client in served:
        if client.backchannel_logout_uri:
            row = outbox.enqueue(
                db,
                client_id=client.client_id,
                user_id=sso.user_id,
                sid=sso.sid,
                sub=_subject(db, user, client),
                reason=reason,
                now=now,
            )
            ended.deliveries.append(row.id)
        if client.frontchannel_logout_uri:
            ended.frontchannel.append(
                FrontChannel(
                    client.name, frontchannel_url(client.frontchannel_logout_uri, issuer, sso.sid)
                )
            )
    events.record(
        db,
        "logout.completed",
        user_id=sso.user_id,
        client_id=initiator,
        sid=sso.sid,
        reason=reason,
        backchannel=len(ended.deliveries),
        frontchannel=len(ended.frontchannel),
    )
    return ended


def logout_everywhere(
    db: Session, user_id: int, reason: str, *, keep_sid: str | None = None
) -> int:
    """Sign a citizen out of everything: end every session (but the one `keep_sid` names, if
    given), revoke every grant, and queue a back-channel logout naming the citizen (`sub`, no
    `sid`: all of their sessions there) for every e-service of a live session or a live grant.
    The outbox worker delivers them. Returns how many sessions were ended."""
    now = datetime.now(UTC)
    live_sessions = list(
        db.scalars(
            select(SsoSession.id).where(
                SsoSession.user_id == user_id, SsoSession.ended_at.is_(None)
            )
        )
    )
    live_grants = list(
        db.scalars(
            select(TokenGrant).where(
                TokenGrant.user_id == user_id,
                TokenGrant.revoked_at.is_(None),
                TokenGrant.expires_at > now,
            )
        )
    )
    served = {c.client_id: c for c in participants.clients_of(db, live_sessions)}
    granted = {g.client_id for g in live_grants} - set(served)
    if granted:
        for client in db.scalars(select(Client).where(Client.client_id.in_(granted))):
            if not client.disabled:
                served[client.client_id] = client
    count = end_all_sessions(db, user_id, reason=reason, keep_sid=keep_sid)
    for grant in live_grants:
        revoke_grant(db, grant.id, reason=reason)
    user = db.get(User, user_id)
    notified = 0
    for client in sorted(served.values(), key=lambda c: c.client_id):
        if client.backchannel_logout_uri and user is not None:
            outbox.enqueue(
                db,
                client_id=client.client_id,
                user_id=user_id,
                sid=None,
                sub=_subject(db, user, client),
                reason=reason,
                now=now,
            )
            notified += 1
    events.record(
        db,
        "logout.everywhere",
        user_id=user_id,
        reason=reason,
        sessions=count,
        grants_revoked=len(live_grants),
        backchannel=notified,
    )
    return count


def end_everything(db: Session, user_id: int, reason: str, *, keep_sid: str | None = None) -> int:
    """The account's credentials changed or it was recovered (a new password, the second factor
    reset, the role changed, the account disabled, "this wasn't me"): nothing obtained before
    may outlive it. Every session ends (but the citizen's current one when `keep_sid` names
    it, for a change they just made there), every grant is revoked with a back-channel logout
    to each e-service involved (`logout_everywhere`), codes not yet redeemed stop working,
    sign-ins in progress start again from the password, and password-reset links already sent
    are used up. One transaction, the caller's. Returns how many sessions were ended."""
    ended = logout_everywhere(db, user_id, reason, keep_sid=keep_sid)
    expire_codes(db, user_id)
    interactions.restart_for(db, user_id)
    void_reset_links(db, user_id)
    return ended
