"""Token introspection (RFC 7662), revocation (RFC 7009) and userinfo (OIDC Core §5.3).

Introspection and revocation require client authentication, and a client only ever sees or
revokes its own tokens: anyone else's token is reported inactive, and is left alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from sqlalchemy.orm import Session

from idp import events
from idp.db.models import AccessToken, Client, RefreshToken, TokenGrant, User
from idp.oauth import tokens
from idp.oauth.claims import releasable, subject_for, user_claims
from idp.oauth.clients import CONFIDENTIAL_METHODS, OAuthClient
from idp.runtime import Runtime

USERINFO_JWT = "application/jwt"


@dataclass
class FoundToken:
    """An access or refresh token row with its grant, as the endpoints below read it."""

    kind: str
    row: AccessToken | RefreshToken
    grant: TokenGrant | None

    def check_client(self, client: OAuthClient) -> bool:
        return bool(self.row.client_id == client.client_id)

    def is_expired(self) -> bool:
        return self.row.expires_at <= datetime.now(UTC)

    def is_revoked(self) -> bool:
        if self.row.revoked_at is not None or not tokens.grant_is_live(self.grant):
            return True
        return isinstance(self.row, RefreshToken) and self.row.used_at is not None


def _find(db: Session, text: str, hint: str | None) -> FoundToken | None:
    order = (
        ("refresh_token", "access_token")
        if hint == "refresh_token"
        else (
            "access_token",
            "refresh_token",
        )
    )
    for kind in order:
        row: AccessToken | RefreshToken | None
        if kind == "access_token":
            row = tokens.find_access_token(db, text)
        else:
            row = tokens.find_refresh_token(db, text)
        if row is not None:
            return FoundToken(kind, row, db.get(TokenGrant, row.grant_id))
    return None


class IntrospectionEndpoint(_IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = list(CONFIDENTIAL_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> FoundToken | None:
        return _find(self.server.db, token_string, token_type_hint)

    def check_permission(self, token: FoundToken, client: OAuthClient, request: Any) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: FoundToken) -> dict[str, Any]:
        db: Session = self.server.db
        grant = token.grant
        assert grant is not None
        row = token.row
        client_row = self.server.query_client(row.client_id)
        client = client_row.row if client_row else None
        payload: dict[str, Any] = {
            "active": True,
            "client_id": row.client_id,
            "scope": row.scope,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "iss": self.server.settings.issuer,
            "iat": int(row.created_at.timestamp()),
            "exp": int(row.expires_at.timestamp()),
        }
        if grant.user_id is not None and client is not None:
            user = db.get(User, grant.user_id)
            if user is None or user.disabled:
                return {"active": False}
            payload["sub"] = subject_for(db, user, client)
            if grant.auth_time is not None:
                payload["auth_time"] = int(grant.auth_time.timestamp())
            payload["acr"] = grant.acr
        elif grant.user_id is None:
            payload["sub"] = row.client_id
        if isinstance(row, AccessToken):
            payload["jti"] = row.jti
        return payload


class RevocationEndpoint(_RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = list(CONFIDENTIAL_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> FoundToken | None:
        return _find(self.server.db, token_string, token_type_hint)

    def revoke_token(self, token: FoundToken, request: Any) -> None:
        """An access token alone; a refresh token with its whole grant (RFC 7009 §2.1)."""
        db: Session = self.server.db
        if isinstance(token.row, AccessToken):
            tokens.revoke_access_token(db, token.row)
            events.record(db, "token.revoked", client_id=token.row.client_id, kind="access_token")
        else:
            tokens.revoke_grant(db, token.row.grant_id, reason="revoked_by_client")


# Userinfo -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserinfoResult:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str]


def bearer_error(
    status: int,
    error: str | None,
    description: str | None = None,
    *,
    realm: str = "userinfo",
    scope: str | None = None,
) -> UserinfoResult:
    """A resource's refusal of a Bearer token (RFC 6750 §3); `scope`: the scope it needs."""
    challenge = f'Bearer realm="{realm}"'
    if error:
        challenge += f', error="{error}"'
        if description:
            challenge += f', error_description="{description}"'
        if scope:
            challenge += f', scope="{scope}"'
    body: dict[str, Any] = {"error": error or "invalid_token"}
    if description:
        body["error_description"] = description
    return UserinfoResult(
        status, body, {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}
    )


def bearer_token(headers: Any, form: dict[str, str], query: dict[str, str]) -> str | bool | None:
    """The access token from the header or the form body (RFC 6750 §2); False if the request
    carries it more than one way or in the query string (refused)."""
    header = headers.get("Authorization") or ""
    from_header = None
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return False
        from_header = value.strip()
    from_body = form.get("access_token")
    if "access_token" in query or (from_header and from_body):
        return False
    return from_header or from_body


def userinfo(db: Session, runtime: Runtime, token_text: str) -> UserinfoResult:
    """The claims the token's scope, the citizen's consent and the `claims` parameter allow."""
    live = tokens.live_access_token(db, token_text)
    if live is None:
        return bearer_error(401, "invalid_token", "The access token is invalid or expired.")
    if live.user is None or "openid" not in live.row.scope.split():
        return bearer_error(403, "insufficient_scope", "The token does not grant openid.")
    client = db.query(Client).filter(Client.client_id == live.row.client_id).one_or_none()
    if client is None or client.disabled:
        return bearer_error(401, "invalid_token", "The access token is invalid or expired.")
    claims: dict[str, Any] = {"sub": subject_for(db, live.user, client)}
    names = releasable(
        live.row.scope, live.grant.claims, "userinfo", allowed=client.allowed_claims or ()
    )
    claims.update(user_claims(live.user, names))
    events.record(
        db,
        "userinfo.released",
        user_id=live.user.id,
        client_id=client.client_id,
        claims=sorted(claims),
    )
    if client.userinfo_signed_response_alg:
        now = int(time.time())
        signed = dict(claims, iss=runtime.settings.issuer, aud=client.client_id, iat=now)
        signed["exp"] = now + runtime.settings.id_token_lifetime
        body = runtime.keyring.sign(signed, alg=client.userinfo_signed_response_alg)
        return UserinfoResult(
            200, body, {"Content-Type": USERINFO_JWT, "Cache-Control": "no-store"}
        )
    return UserinfoResult(200, claims, {"Cache-Control": "no-store"})
