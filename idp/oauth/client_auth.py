"""Client authentication at the token, introspection and revocation endpoints.

`client_secret_basic` (credentials form-URL-decoded, RFC 6749 §2.3.1), `client_secret_post`,
`private_key_jwt` (RFC 7523, OIDC Core §9: keys only from the client's registered `jwks` or
`jwks_uri`, asymmetric algorithms only, `aud` naming this provider, `exp` required, each `jti`
accepted once) and `none` for public clients. A request may use one method only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.config import Settings
from idp.db.models import UsedJti
from idp.json_input import parse_json
from idp.oauth.clients import OAuthClient
from idp.oauth.fetch import JWKS_CACHE, FetchError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("RS256", "PS256", "ES256", "EdDSA")
MAX_ASSERTION = 8192
MAX_ASSERTION_LIFETIME = 3600
LEEWAY = 60

QueryClient = Callable[[str], OAuthClient | None]


def basic_credentials(headers: Any) -> tuple[str | None, str | None]:
    """Client id and secret from `Authorization: Basic`, each form-URL-decoded."""
    value = headers.get("Authorization") or ""
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClientError(
            status_code=401, description="Malformed Basic credentials."
        ) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClientError(status_code=401, description="Malformed Basic credentials.")
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client_secret_basic(query_client: QueryClient, request: Any) -> Any:
    client_id, secret = basic_credentials(request.headers)
    if not client_id or secret is None:
        return None
    client = query_client(client_id)
    if client is None or not client.check_client_secret(secret):
        raise InvalidClientError(status_code=401, description="Client authentication failed.")
    return client


def authenticate_client_secret_post(query_client: QueryClient, request: Any) -> Any:
    client_id = request.form.get("client_id")
    secret = request.form.get("client_secret")
    if not client_id or secret is None:
        return None
    client = query_client(client_id)
    if client is None or not client.check_client_secret(secret):
        raise InvalidClientError(status_code=401, description="Client authentication failed.")
    return client


def authenticate_none(query_client: QueryClient, request: Any) -> Any:
    client_id = request.form.get("client_id")
    if not client_id or "client_secret" in request.form:
        return None
    return query_client(client_id)


class PrivateKeyJwt:
    """`private_key_jwt`, verified with joserfc against the client's registered keys."""

    def __init__(self, db: Session, settings: Settings, audiences: list[str]) -> None:
        self.db = db
        self.settings = settings
        self.audiences = audiences

    def _keys(self, client: OAuthClient, kid: str | None) -> KeySet:
        row = client.row
        if row.jwks:
            return KeySet.import_key_set(row.jwks)  # type: ignore[arg-type]
        if not row.jwks_uri:
            raise InvalidClientError(status_code=401, description="The client has no keys.")
        try:
            document = JWKS_CACHE.get(row.jwks_uri, self.settings)
            if kid and not any(k.get("kid") == kid for k in document["keys"]):
                document = JWKS_CACHE.get(row.jwks_uri, self.settings, refresh=True)
            return KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (FetchError, JoseError, ValueError) as exc:
            raise InvalidClientError(
                status_code=401, description="The client's keys could not be read."
            ) from exc

    def __call__(self, query_client: QueryClient, request: Any) -> Any:
        form = request.form
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None
        failed = InvalidClientError(status_code=401, description="Invalid client assertion.")
        if len(assertion) > MAX_ASSERTION:
            raise failed
        try:
            compact = jws.extract_compact(assertion.encode())
            header = compact.headers()
            unverified = parse_json(compact.payload, max_size=MAX_ASSERTION)
        except (JoseError, ValueError):
            raise failed from None
        if not isinstance(unverified, dict) or not isinstance(unverified.get("sub"), str):
            raise failed
        if header.get("alg") not in ASSERTION_ALGS or "crit" in header:
            raise failed
        client_id = unverified["sub"]
        if form.get("client_id") not in (None, client_id):
            raise failed
        client = query_client(client_id)
        if client is None or client.row.token_endpoint_auth_method != "private_key_jwt":
            raise failed
        keys = self._keys(client, header.get("kid"))
        try:
            token = jwt.decode(assertion, keys, algorithms=list(ASSERTION_ALGS))
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY,
                iss={"essential": True, "value": client_id},
                sub={"essential": True, "value": client_id},
                aud={"essential": True, "values": self.audiences},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError):
            raise failed from None
        exp = token.claims["exp"]
        now = datetime.now(UTC)
        if not isinstance(exp, int) or exp > now.timestamp() + MAX_ASSERTION_LIFETIME:
            raise failed
        jti = str(token.claims["jti"])
        if not 1 <= len(jti) <= 128:
            raise failed
        try:
            with self.db.begin_nested():
                self.db.add(
                    UsedJti(
                        client_id=client_id,
                        jti=jti,
                        expires_at=max(
                            datetime.fromtimestamp(exp, UTC), now + timedelta(seconds=LEEWAY)
                        ),
                    )
                )
        except IntegrityError:
            raise InvalidClientError(
                status_code=401, description="The client assertion was already used."
            ) from None
        return client


class ProviderClientAuthentication(ClientAuthentication):  # type: ignore[misc]
    """Authlib's registry with our methods, refusing requests that use more than one."""

    def __init__(self, query_client: QueryClient, private_key_jwt: PrivateKeyJwt) -> None:
        super().__init__(query_client)
        self._methods = {
            "none": authenticate_none,
            "client_secret_basic": authenticate_client_secret_basic,
            "client_secret_post": authenticate_client_secret_post,
            "private_key_jwt": private_key_jwt,
        }

    def authenticate(self, request: Any, methods: list[str], endpoint: str) -> Any:
        form = request.form
        used = [
            bool((request.headers.get("Authorization") or "").lower().startswith("basic ")),
            "client_secret" in form,
            "client_assertion" in form or "client_assertion_type" in form,
        ]
        if sum(used) > 1:
            raise InvalidRequestError("Use exactly one client authentication method.")
        client_id = form.get("client_id")
        found = super().authenticate(request, methods, endpoint)
        if client_id and client_id != found.get_client_id():
            raise InvalidClientError(status_code=401, description="client_id does not match.")
        if found.row.disabled:
            raise InvalidClientError(status_code=401, description="The client is disabled.")
        return found
