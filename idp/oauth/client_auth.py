"""Client authentication at the token, introspection and revocation endpoints.

`client_secret_basic` (credentials form-URL-decoded, RFC 6749 §2.3.1), `client_secret_post`,
`private_key_jwt` (RFC 7523, OIDC Core §9: keys only from the client's registered `jwks` or
`jwks_uri`, asymmetric algorithms only, `aud` naming this provider, `exp` required, each `jti`
accepted once; the assertion's shape is checked before any key is fetched, and keys at a
`jwks_uri` are fetched by `idp.oauth.assertion_keys` in the event loop, never here) and `none`
for public clients. A request may use one method only.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


def audiences(issuer: str) -> list[str]:
    """What a client assertion's `aud` may name: the provider, or the endpoint it is sent to."""
    return [issuer, f"{issuer}/token", f"{issuer}/introspect", f"{issuer}/revoke"]


@dataclass(frozen=True)
class ClaimedAssertion:
    """A client assertion as presented: its shape checked, its signature not yet."""

    client_id: str
    kid: str | None


def claimed_assertion(form: Mapping[str, str], accepted: list[str]) -> ClaimedAssertion | None:
    """The client assertion of a request that authenticates with `private_key_jwt` (None for
    another method), checked from its unverified content before any key is looked up or
    fetched: an allowed algorithm and no `crit`, `iss` and `sub` both naming the client (and
    `client_id` too, if sent), `aud` naming one of `accepted`, `exp` present, not past and not too
    far, a `jti`. Raises `InvalidClientError` otherwise. The signature is checked after."""
    assertion = form.get("client_assertion")
    if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
        return None
    failed = InvalidClientError(status_code=401, description="Invalid client assertion.")
    if len(assertion) > MAX_ASSERTION:
        raise failed
    try:
        compact = jws.extract_compact(assertion.encode())
        header = compact.headers()
        claims = parse_json(compact.payload, max_size=MAX_ASSERTION)
    except (JoseError, ValueError):
        raise failed from None
    if header.get("alg") not in ASSERTION_ALGS or "crit" in header or not isinstance(claims, dict):
        raise failed
    client_id = claims.get("sub")
    if not isinstance(client_id, str) or not client_id or claims.get("iss") != client_id:
        raise failed
    if form.get("client_id") not in (None, client_id):
        raise failed
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(value, str) and value in accepted for value in named):
        raise failed
    exp = claims.get("exp")
    now = time.time()
    if (
        not isinstance(exp, int)
        or isinstance(exp, bool)
        or exp < now - LEEWAY
        or exp > now + MAX_ASSERTION_LIFETIME
    ):
        raise failed
    jti = claims.get("jti")
    if jti is None or not 1 <= len(str(jti)) <= 128:
        raise failed
    kid = header.get("kid")
    return ClaimedAssertion(client_id, kid if isinstance(kid, str) else None)


@dataclass(frozen=True)
class FetchedKeys:
    """The key set at an e-service's `jwks_uri`, fetched for one request before it entered a
    thread and a transaction (`document` None: it could not be had)."""

    url: str
    document: dict[str, Any] | None


class PrivateKeyJwt:
    """`private_key_jwt`, verified with joserfc against the client's registered keys: its
    `jwks`, or the set at its `jwks_uri` that the view fetched beforehand (`fetched`); this
    code never fetches anything itself."""

    def __init__(
        self,
        db: Session,
        settings: Settings,
        audiences: list[str],
        fetched: FetchedKeys | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.audiences = audiences
        self.fetched = fetched

    def _keys(self, client: OAuthClient) -> KeySet:
        row = client.row
        if row.jwks:
            return KeySet.import_key_set(row.jwks)  # type: ignore[arg-type]
        unreadable = InvalidClientError(
            status_code=401, description="The client's keys could not be read."
        )
        fetched = self.fetched
        if fetched is None or fetched.url != row.jwks_uri or fetched.document is None:
            raise unreadable
        try:
            return KeySet.import_key_set(fetched.document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError) as exc:
            raise unreadable from exc

    def __call__(self, query_client: QueryClient, request: Any) -> Any:
        claimed = claimed_assertion(request.form, self.audiences)
        if claimed is None:
            return None
        failed = InvalidClientError(status_code=401, description="Invalid client assertion.")
        client_id = claimed.client_id
        client = query_client(client_id)
        if client is None or client.row.token_endpoint_auth_method != "private_key_jwt":
            raise failed
        keys = self._keys(client)
        assertion = request.form["client_assertion"]
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
