"""Checks an e-service makes on what the provider sends it.

The ID token of a sign-in is checked by Authlib (signature with the provider's JWKS, `iss`,
`aud`, `exp`, `iat`, `nonce`). Here: the mix-up defence on the authorization response
(RFC 9207), the ID token that comes with a refresh (OIDC Core §12.2) and the back-channel
logout token (OIDC Back-Channel Logout 1.0 §2.6).
"""

from __future__ import annotations

import time
from typing import Any

from authlib.integrations.starlette_client import StarletteOAuth2App
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LEEWAY = 60  # seconds of clock difference tolerated
MAX_TOKEN_LENGTH = 16 * 1024


class TokenRejected(Exception):
    """The token or response fails a check; the message says which (never the token)."""


def signing_algs(metadata: dict[str, Any]) -> list[str]:
    """Asymmetric algorithms the provider says it signs with; never `none` or HMAC."""
    offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    return [alg for alg in offered if alg != "none" and not alg.startswith("HS")]


async def decode_signed(oidc: StarletteOAuth2App, token: str) -> jwt.Token:
    """Verify a JWT signed by the provider. An unknown `kid` means the provider rotated its
    keys: fetch the JWKS once more, then give up."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected("token missing or too long")
    metadata = await oidc.load_server_metadata()
    algs = signing_algs(metadata)
    try:
        try:
            keys = KeySet.import_key_set(await oidc.fetch_jwk_set())
            return jwt.decode(token, keys, algorithms=algs)
        except InvalidKeyIdError:
            keys = KeySet.import_key_set(await oidc.fetch_jwk_set(force=True))
            return jwt.decode(token, keys, algorithms=algs)
    except (JoseError, ValueError) as exc:
        raise TokenRejected(f"signature not valid: {type(exc).__name__}") from None


def check_issuer_parameter(metadata: dict[str, Any], iss: str | None) -> None:
    """RFC 9207: the authorization response names the issuer that sent it."""
    if iss is None:
        if metadata.get("authorization_response_iss_parameter_supported"):
            raise TokenRejected("the response does not name its issuer")
        return
    if iss != metadata.get("issuer"):
        raise TokenRejected("the response comes from another issuer")


async def check_refreshed_id_token(
    oidc: StarletteOAuth2App, id_token: str, *, previous: dict[str, Any]
) -> dict[str, Any]:
    """An ID token received with a refresh must be valid and name the same citizen."""
    metadata = await oidc.load_server_metadata()
    token = await decode_signed(oidc, id_token)
    claims = dict(token.claims)
    try:
        jwt.JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": metadata["issuer"]},
            aud={"essential": True, "value": oidc.client_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True, "value": str(previous["sub"])},
        ).validate(claims)
    except JoseError as exc:
        raise TokenRejected(f"refreshed ID token not valid: {exc.error}") from None
    if previous.get("auth_time") and claims.get("auth_time") not in (None, previous["auth_time"]):
        raise TokenRejected("refreshed ID token has another auth_time")
    return claims


async def check_logout_token(oidc: StarletteOAuth2App, token: str) -> dict[str, Any]:
    """Validate a back-channel logout token; return its claims."""
    metadata = await oidc.load_server_metadata()
    decoded = await decode_signed(oidc, token)
    typ = str(decoded.header.get("typ", "")).lower()
    if typ not in ("logout+jwt", "application/logout+jwt"):
        raise TokenRejected("typ is not logout+jwt")
    claims = dict(decoded.claims)
    try:
        jwt.JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": metadata["issuer"]},
            aud={"essential": True, "value": oidc.client_id},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(claims)
    except JoseError as exc:
        raise TokenRejected(f"claim not valid: {exc.error}") from None
    if claims["iat"] > time.time() + LEEWAY:
        raise TokenRejected("iat is in the future")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise TokenRejected("events does not hold the back-channel logout event")
    if "nonce" in claims:
        raise TokenRejected("a logout token must not contain a nonce")
    sid, sub = claims.get("sid"), claims.get("sub")
    if not (isinstance(sid, str) and sid) and not (isinstance(sub, str) and sub):
        raise TokenRejected("neither sid nor sub")
    for name in ("sid", "sub"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenRejected(f"{name} is not a string")
    return claims
