"""The back-channel logout token (OpenID Connect Back-Channel Logout 1.0 §2.4)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from idp.db.models import Client
from idp.oauth.keys import KeyRing

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYP = "logout+jwt"
LOGOUT_TOKEN_LIFETIME = 120  # seconds: delivered at once or signed afresh for a retry


def logout_token(
    keyring: KeyRing,
    *,
    issuer: str,
    client: Client,
    sid: str | None,
    sub: str | None,
    default_alg: str,
    now: float | None = None,
) -> str:
    """A signed logout token for one e-service: `sid` and/or `sub`, never a `nonce`; signed
    with the active key of the e-service's ID-token algorithm."""
    if not sid and not sub:
        raise ValueError("a logout token names a session (sid) or a citizen (sub)")
    iat = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client.client_id,
        "iat": iat,
        "exp": iat + LOGOUT_TOKEN_LIFETIME,
        "jti": uuid.uuid4().hex,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    if sub:
        claims["sub"] = sub
    if sid:
        claims["sid"] = sid
    alg = client.id_token_signed_response_alg or default_alg
    return keyring.sign(claims, alg=alg, typ=LOGOUT_TOKEN_TYP)
