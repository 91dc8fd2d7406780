"""Access and refresh tokens: minted, stored (hashes only), found, revoked.

Access tokens are opaque random strings by default, or JWTs (RFC 9068) for e-services that
choose them; either way the database keeps the SHA-256 of the text, so both can be revoked and
introspected the same way. Refresh tokens rotate on every use, inside a *grant*: the family of
tokens issued from one authorization. A refresh token used twice, or an authorization code
redeemed twice, revokes its whole grant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from idp import events
from idp.db.inserts import insert_now
from idp.db.models import AccessToken, AuthorizationCode, Client, RefreshToken, TokenGrant, User
from idp.oauth.keys import KeyRing
from idp.runtime import Runtime
from idp.security import hash_secret, random_token

JWT_ACCESS_TOKEN_TYP = "at+jwt"


def _now() -> datetime:
    return datetime.now(UTC)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# Grants -------------------------------------------------------------------------------------


def grant_from_code(db: Session, code: AuthorizationCode, *, lifetime: int) -> TokenGrant:
    grant = TokenGrant(
        client_id=code.client_id,
        user_id=code.user_id,
        scope=code.scope,
        claims=code.claims,
        sid=code.sid,
        acr=code.acr,
        amr=list(code.amr),
        auth_time=code.auth_time,
        created_at=_now(),
        expires_at=_now() + timedelta(seconds=lifetime),
    )
    insert_now(db, grant, returning_id=True)
    code.grant_id = grant.id
    return grant


def grant_for_client(db: Session, client: Client, scope: str, *, lifetime: int) -> TokenGrant:
    grant = TokenGrant(
        client_id=client.client_id,
        user_id=None,
        scope=scope,
        created_at=_now(),
        expires_at=_now() + timedelta(seconds=lifetime),
    )
    return insert_now(db, grant, returning_id=True)


def revoke_grant(db: Session, grant_id: int, *, reason: str) -> None:
    """Revoke a grant and every token issued in it."""
    now = _now()
    done = db.execute(
        update(TokenGrant)
        .where(TokenGrant.id == grant_id, TokenGrant.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    db.execute(
        update(AccessToken)
        .where(AccessToken.grant_id == grant_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )
    db.execute(
        update(RefreshToken)
        .where(RefreshToken.grant_id == grant_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if _rowcount(done):
        grant = db.get(TokenGrant, grant_id)
        events.record(
            db,
            "token.grant_revoked",
            outcome="success",
            user_id=grant.user_id if grant else None,
            client_id=grant.client_id if grant else None,
            reason=reason,
        )


def grant_is_live(grant: TokenGrant | None) -> bool:
    return grant is not None and grant.revoked_at is None


# Minting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Minted:
    access_token: str
    expires_in: int
    refresh_token: str | None


def mint(
    db: Session,
    runtime: Runtime,
    *,
    client: Client,
    grant: TokenGrant,
    scope: str,
    subject: str,
    include_refresh_token: bool,
) -> Minted:
    """Issue an access token (and a refresh token) in `grant`."""
    settings = runtime.settings
    now = _now()
    lifetime = settings.access_token_lifetime
    jti = uuid.uuid4().hex
    if client.access_token_format == "jwt":
        text = jwt_access_token(
            runtime.keyring,
            issuer=settings.issuer,
            client=client,
            grant=grant,
            scope=scope,
            subject=subject,
            jti=jti,
            now=now,
            lifetime=lifetime,
        )
    else:
        text = random_token(32)
    insert_now(
        db,
        AccessToken(
            token_hash=hash_secret(text),
            jti=jti,
            format=client.access_token_format or "opaque",
            grant_id=grant.id,
            client_id=client.client_id,
            scope=scope,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        ),
    )
    refresh = None
    if include_refresh_token and grant.expires_at > now:
        refresh = random_token(32)
        insert_now(
            db,
            RefreshToken(
                token_hash=hash_secret(refresh),
                grant_id=grant.id,
                client_id=client.client_id,
                scope=grant.scope,
                created_at=now,
                expires_at=grant.expires_at,  # rotation never extends the family
            ),
        )
    return Minted(text, lifetime, refresh)


def jwt_access_token(
    keyring: KeyRing,
    *,
    issuer: str,
    client: Client,
    grant: TokenGrant,
    scope: str,
    subject: str,
    jti: str,
    now: datetime,
    lifetime: int,
) -> str:
    """An RFC 9068 access token, signed with the e-service's ID-token algorithm."""
    iat = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": issuer,
        "client_id": client.client_id,
        "iat": iat,
        "exp": iat + lifetime,
        "jti": jti,
        "scope": scope,
    }
    if grant.user_id is not None and grant.auth_time is not None:
        claims["auth_time"] = int(grant.auth_time.timestamp())
        claims["acr"] = grant.acr
        claims["amr"] = list(grant.amr)
    alg = client.id_token_signed_response_alg or "RS256"
    return keyring.sign(claims, alg=alg, typ=JWT_ACCESS_TOKEN_TYP)


# Finding ------------------------------------------------------------------------------------


@dataclass
class LiveAccessToken:
    row: AccessToken
    grant: TokenGrant
    user: User | None


@cache  # built once: SQLAlchemy then reuses its compiled form
def _with_grant_and_user(token: type[AccessToken] | type[RefreshToken]) -> Any:
    """The token row found by its hash, its grant and the grant's citizen, in one statement: the
    three land in the session's identity map (see `_keep`), so that the `db.get`s that follow
    cost no round trip."""
    return (
        select(token, TokenGrant, User)
        .join(TokenGrant, TokenGrant.id == token.grant_id)
        .outerjoin(User, User.id == TokenGrant.user_id)
        .where(token.token_hash == bindparam("token_hash"))
    )


def _keep(db: Session, row: Any) -> Any:
    """The session's identity map holds its objects weakly: keep the grant and the citizen
    loaded with a token for as long as the session lives (one request)."""
    if row is None:
        return None
    db.info.setdefault("loaded_with_token", []).extend(row[1:])
    return row[0]


def find_access_token(db: Session, text: str) -> AccessToken | None:
    if not text or len(text) > 4096:
        return None
    found = db.execute(_with_grant_and_user(AccessToken), {"token_hash": hash_secret(text)}).first()
    return _keep(db, found)  # type: ignore[no-any-return]


def find_refresh_token(db: Session, text: str) -> RefreshToken | None:
    if not text or len(text) > 512:
        return None
    found = db.execute(
        _with_grant_and_user(RefreshToken), {"token_hash": hash_secret(text)}
    ).first()
    return _keep(db, found)  # type: ignore[no-any-return]


def live_access_token(db: Session, text: str) -> LiveAccessToken | None:
    """The access token if it is valid now: not expired, not revoked, its grant and citizen
    still in good standing."""
    row = find_access_token(db, text)
    if row is None or row.revoked_at is not None or row.expires_at <= _now():
        return None
    grant = db.get(TokenGrant, row.grant_id)
    if grant is None or not grant_is_live(grant):
        return None
    user = db.get(User, grant.user_id) if grant.user_id is not None else None
    if grant.user_id is not None and (user is None or user.disabled):
        return None
    return LiveAccessToken(row, grant, user)


def use_refresh_token(db: Session, text: str, client_id: str) -> RefreshToken | None:
    """Consume a refresh token atomically: the one caller that wins gets it back.

    A token already used (or used at this very moment by someone else) is a sign that it was
    stolen: its whole grant is revoked and nothing is returned."""
    row = find_refresh_token(db, text)
    if row is None or row.client_id != client_id:
        return None
    now = _now()
    won = db.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == row.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(won) != 1:
        db.refresh(row)
        if row.revoked_at is None or row.used_at is not None:
            revoke_grant(db, row.grant_id, reason="refresh_token_reused")
            events.record(db, "token.refresh_token_reused", outcome="failure", client_id=client_id)
        return None
    set_committed_value(row, "used_at", now)  # written above: nothing left for the flush
    grant = db.get(TokenGrant, row.grant_id)
    if row.expires_at <= now or not grant_is_live(grant):
        return None
    return row


def use_authorization_code(db: Session, text: str, client_id: str) -> AuthorizationCode | None:
    """Redeem a code atomically: of two simultaneous redemptions exactly one gets it.

    A code presented again revokes the tokens it produced (RFC 6749 §4.1.2)."""
    if not text or len(text) > 512:
        return None
    row = db.scalar(
        select(AuthorizationCode).where(AuthorizationCode.code_hash == hash_secret(text))
    )
    if row is None or row.client_id != client_id:
        return None
    now = _now()
    won = db.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(won) != 1:
        db.refresh(row)
        if row.grant_id is not None:
            revoke_grant(db, row.grant_id, reason="code_reused")
        events.record(
            db, "token.code_reused", outcome="failure", user_id=row.user_id, client_id=client_id
        )
        return None
    set_committed_value(row, "used_at", now)  # written above: nothing left for the flush
    if row.expires_at <= now:
        return None
    return row


def expire_codes(db: Session, user_id: int) -> int:
    """Make a citizen's codes not yet redeemed unusable (they answer `invalid_grant`, as an
    expired code does); returns how many."""
    now = _now()
    done = db.execute(
        update(AuthorizationCode)
        .where(
            AuthorizationCode.user_id == user_id,
            AuthorizationCode.used_at.is_(None),
            AuthorizationCode.expires_at > now,
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(done)


def revoke_access_token(db: Session, row: AccessToken) -> None:
    if row.revoked_at is None:
        row.revoked_at = _now()
