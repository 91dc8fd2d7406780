"""The grants: authorization code (+ OpenID Connect, + PKCE S256), refresh token, client
credentials. Authlib runs the protocol; these subclasses hold this provider's rules."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
    grants,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import grants as oidc_grants
from authlib.oidc.core.errors import (
    RegistrationNotSupportedError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from idp import events
from idp.auth.assurance import rank
from idp.db.models import AuthorizationCode, Client, TokenGrant, User
from idp.logout import participants
from idp.oauth import tokens
from idp.oauth.claims import (
    ClaimsRequestError,
    parse_claims_parameter,
    releasable,
    requested_acr,
    subject_for,
    user_claims,
    user_for_subject,
)
from idp.oauth.clients import OAuthClient
from idp.oauth.responses import RESPONSE_MODES, authorization_response
from idp.runtime import Runtime
from idp.security import hash_secret, random_token

ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
SUPPORTED_ACR = ("low", "substantial")
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
KNOWN_PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "response_mode",
    "prompt",
    "max_age",
    "id_token_hint",
    "login_hint",
    "ui_locales",
    "claims_locales",
    "acr_values",
    "display",
    "claims",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
    "registration",
)
MAX_NONCE = 512
MAX_STATE = 2048


class OnlyCodeSupported(UnsupportedResponseTypeError):  # type: ignore[misc]
    """`unsupported_response_type` whose description never echoes the request."""

    def get_error_description(self) -> str:
        return "Only response_type=code is supported."


@dataclass
class AuthorizationParams:
    """An authorization request's OpenID Connect parameters, checked."""

    prompt: set[str] = field(default_factory=set)
    max_age: int | None = None
    required_acr: str | None = None
    claims: dict[str, dict[str, Any]] | None = None
    hint_user_id: int | None = None
    login_hint: str | None = None
    ui_locales: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _server(grant: Any) -> Any:
    return grant.server


# ID tokens ----------------------------------------------------------------------------------


def id_token(
    db: Session,
    runtime: Runtime,
    *,
    client: Client,
    user: User,
    grant: TokenGrant,
    access_token: str | None,
    nonce: str | None,
) -> str:
    """A signed ID token (OIDC Core §2) with the e-service's algorithm and our `kid`."""
    alg = client.id_token_signed_response_alg or runtime.settings.default_signing_alg
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": runtime.settings.issuer,
        "sub": subject_for(db, user, client),
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": now,
        "exp": now + runtime.settings.id_token_lifetime,
    }
    if grant.auth_time is not None:
        claims["auth_time"] = int(grant.auth_time.timestamp())
    if grant.acr:
        claims["acr"] = grant.acr
    if grant.amr:
        claims["amr"] = list(grant.amr)
    if grant.sid:
        claims["sid"] = grant.sid
    if nonce:
        claims["nonce"] = nonce
    if access_token:
        half = create_half_hash(access_token, alg)
        if half is not None:
            claims["at_hash"] = half.decode()
    claims.update(
        user_claims(
            user,
            releasable(grant.scope, grant.claims, "id_token", allowed=client.allowed_claims or ()),
        )
    )
    return runtime.keyring.sign(claims, alg=alg)


def decode_id_token_hint(runtime: Runtime, hint: str, client_id: str) -> dict[str, Any]:
    """The claims of an ID token we issued to this e-service (expired ones are fine)."""
    if len(hint) > 8192:
        raise InvalidRequestError("Invalid id_token_hint.")
    try:
        keys = KeySet.import_key_set(runtime.keyring.jwks())  # type: ignore[arg-type]
        token = jwt.decode(hint, keys, algorithms=runtime.keyring.signing_algs() or ["RS256"])
    except (JoseError, ValueError):
        raise InvalidRequestError("Invalid id_token_hint.") from None
    claims = token.claims
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("iss") != runtime.settings.issuer or client_id not in audiences:
        raise InvalidRequestError("Invalid id_token_hint.")
    if not isinstance(claims.get("sub"), str):
        raise InvalidRequestError("Invalid id_token_hint.")
    return claims


# Token issuing shared by the grants ---------------------------------------------------------


class IssuingMixin:
    """Mints and stores tokens (`generate_token` is Authlib's hook for making them)."""

    request: Any
    server: Any
    GRANT_TYPE: str | None

    def token_grant(self, scope: str | None) -> TokenGrant:
        raise NotImplementedError

    def generate_token(
        self,
        user: User | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        db: Session = self.server.db
        client: Client = self.request.client.row
        grant = self.token_grant(scope)
        self.request.token_grant = grant
        scope = scope if scope is not None else grant.scope
        subject = subject_for(db, user, client) if user is not None else client.client_id
        minted = tokens.mint(
            db,
            self.server.runtime,
            client=client,
            grant=grant,
            scope=scope,
            subject=subject,
            include_refresh_token=include_refresh_token,
        )
        token: dict[str, Any] = {
            "access_token": minted.access_token,
            "token_type": "Bearer",
            "expires_in": minted.expires_in,
            "scope": scope,
        }
        if minted.refresh_token:
            token["refresh_token"] = minted.refresh_token
        events.record(
            db,
            "token.issued",
            user_id=user.id if user is not None else None,
            client_id=client.client_id,
            grant_type=grant_type or self.GRANT_TYPE,
            scope=scope,
            refresh_token=minted.refresh_token is not None,
        )
        return token


def _user(db: Session, user_id: int | None) -> User | None:
    user = db.get(User, user_id) if user_id is not None else None
    return None if user is None or user.disabled else user


# Authorization code -------------------------------------------------------------------------


class CodeView:
    """A redeemed `AuthorizationCode` row as Authlib and its extensions read it."""

    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce


class AuthorizationCodeGrant(IssuingMixin, grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    @classmethod
    def check_authorization_endpoint(cls, request: Any) -> bool:
        return True  # the only grant at the authorization endpoint; response_type checked below

    # Authorization endpoint -----------------------------------------------------------------

    @staticmethod
    def validate_no_multiple_request_parameter(request: Any) -> None:
        """Checked in `validate_authorization_request`, where the redirect URI is known."""

    def validate_authorization_request(self) -> str:
        request = self.request
        payload = request.payload
        for name in ("client_id", "redirect_uri"):
            if len(payload.datalist.get(name, [])) > 1:
                raise InvalidRequestError(f"The parameter {name} is repeated.")
        if not payload.client_id:
            raise InvalidClientError(description="The client_id parameter is missing.")
        client = self.server.query_client(payload.client_id)
        if client is None:
            raise InvalidClientError(description="The client is unknown or disabled.")
        redirect_uri = payload.redirect_uri
        if not redirect_uri:
            raise InvalidRequestError("The redirect_uri parameter is missing.")
        if not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("The redirect_uri is not registered for this client.")
        try:
            self._validate_parameters(client)
            super().validate_authorization_request()
            if "openid" not in request.scope.split():
                raise InvalidScopeError("The openid scope is required.")
            request.oidc = self._validate_oidc(client)
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        self.redirect_uri = redirect_uri
        return str(redirect_uri)

    def _validate_parameters(self, client: OAuthClient) -> None:
        data = self.request.payload.data
        datalist = self.request.payload.datalist
        for name in KNOWN_PARAMETERS:
            if len(datalist.get(name, [])) > 1:
                raise InvalidRequestError(f"The parameter {name} is repeated.")
        if "request" in data:
            raise RequestNotSupportedError()
        if "request_uri" in data:
            raise RequestURINotSupportedError()
        if "registration" in data:
            raise RegistrationNotSupportedError()
        response_type = data.get("response_type")
        if not response_type:
            raise InvalidRequestError("The response_type parameter is missing.")
        if response_type != "code":
            raise OnlyCodeSupported(response_type)
        if not client.check_response_type(response_type):
            raise UnauthorizedClientError("This client may not use the authorization code flow.")
        mode = data.get("response_mode")
        if mode is not None and mode not in RESPONSE_MODES:
            raise InvalidRequestError("Unsupported response_mode.")
        if len(data.get("nonce") or "") > MAX_NONCE or len(data.get("state") or "") > MAX_STATE:
            raise InvalidRequestError("The nonce or state is too long.")

    def _validate_oidc(self, client: OAuthClient) -> AuthorizationParams:
        data = self.request.payload.data
        params = AuthorizationParams()
        prompt = set((data.get("prompt") or "").split())
        if prompt - PROMPTS:
            raise InvalidRequestError("Unsupported prompt value.")
        if "none" in prompt and len(prompt) > 1:
            raise InvalidRequestError("prompt=none cannot be combined with other values.")
        params.prompt = prompt
        max_age = data.get("max_age")
        if max_age is not None:
            if not max_age.isdigit() or len(max_age) > 10:
                raise InvalidRequestError("max_age must be a non-negative integer.")
            params.max_age = int(max_age)
        try:
            params.claims = parse_claims_parameter(data.get("claims"))
        except ClaimsRequestError as exc:
            raise InvalidRequestError(str(exc)) from None
        claim_values, _essential = requested_acr(params.claims)
        wanted = [v for v in claim_values or (data.get("acr_values") or "").split()]
        known = [v for v in wanted if v in SUPPORTED_ACR]
        params.required_acr = min(known, key=rank) if known else None
        hint = data.get("id_token_hint")
        if hint:
            claims = decode_id_token_hint(self.server.runtime, hint, client.client_id)
            user = user_for_subject(self.server.db, claims["sub"], client.row)
            params.hint_user_id = user.id if user is not None else -1
        params.login_hint = (data.get("login_hint") or "")[:320] or None
        params.ui_locales = (data.get("ui_locales") or "")[:64] or None
        return params

    def create_authorization_response(self, redirect_uri: str, grant_user: Any) -> Any:
        if not grant_user:
            raise AccessDeniedError(redirect_uri=redirect_uri)
        self.request.user = grant_user
        code = random_token(32)
        self.save_authorization_code(code, self.request)
        params = [("code", code)]
        state = self.request.payload.data.get("state")
        if state:
            params.append(("state", state))
        params.append(("iss", self.server.settings.issuer))
        mode = self.request.payload.data.get("response_mode") or "query"
        return authorization_response(redirect_uri, params, mode)

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        sso = request.sso
        challenge = data.get("code_challenge")
        row = AuthorizationCode(
            code_hash=hash_secret(code),
            client_id=request.client.client_id,
            user_id=request.user.id,
            redirect_uri=data["redirect_uri"],
            scope=request.scope,
            claims=request.oidc.claims,
            nonce=data.get("nonce"),
            code_challenge=challenge,
            code_challenge_method="S256" if challenge else None,
            sid=sso.sid,
            acr=sso.acr,
            amr=list(sso.amr),
            auth_time=sso.auth_time,
            created_at=_now(),
            expires_at=_now() + timedelta(seconds=self.server.settings.authorization_code_lifetime),
        )
        self.server.db.add(row)
        self.server.db.flush()
        participants.remember(self.server.db, sso, request.client.client_id)  # single logout
        events.record(
            self.server.db,
            "authorization.code_issued",
            user_id=request.user.id,
            client_id=request.client.client_id,
            scope=request.scope,
        )

    # Token endpoint -------------------------------------------------------------------------

    def query_authorization_code(self, code: str, client: OAuthClient) -> CodeView | None:
        row = tokens.use_authorization_code(self.server.db, code, client.client_id)
        return CodeView(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: CodeView) -> None:
        """Nothing to do: the code was used up atomically when it was redeemed."""

    def authenticate_user(self, authorization_code: CodeView) -> User | None:
        return _user(self.server.db, authorization_code.row.user_id)

    def token_grant(self, scope: str | None) -> TokenGrant:
        code: CodeView = self.request.authorization_code
        return tokens.grant_from_code(
            self.server.db, code.row, lifetime=self.server.settings.refresh_token_lifetime
        )


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only; required of public clients and of clients that ask for it."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if not challenge and grant.request.client.requires_pkce:
            raise InvalidRequestError("PKCE is required: send code_challenge with S256.")
        super().validate_code_challenge(grant, redirect_uri)
        if challenge and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")


class OpenIDCode(oidc_grants.OpenIDCode):  # type: ignore[misc]
    """Adds the ID token to the code grant's token response. Prompt handling is ours
    (`idp.oauth.authorize`), so Authlib's prompt hook is not registered."""

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False  # a nonce protects the e-service; its replay is its check (OIDC §3.1.3.7)

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_create_token_response", self.process_token)
        grant.register_hook(
            "after_validate_authorization_request_payload",
            self.validate_openid_authorization_request,
        )

    def process_token(self, grant: Any, response: Any) -> Any:
        _, token, _ = response
        if "openid" not in (token.get("scope") or "").split():
            return token
        request = grant.request
        token["id_token"] = id_token(
            grant.server.db,
            grant.server.runtime,
            client=request.client.row,
            user=request.user,
            grant=request.token_grant,
            access_token=token.get("access_token"),
            nonce=request.authorization_code.get_nonce(),
        )
        return token


# Refresh token ------------------------------------------------------------------------------


class RefreshView:
    def __init__(self, row: Any) -> None:
        self.row = row

    def check_client(self, client: OAuthClient) -> bool:
        return bool(self.row.client_id == client.client_id)

    def get_scope(self) -> str:
        return str(self.row.scope)


class RefreshTokenGrant(IssuingMixin, grants.RefreshTokenGrant):  # type: ignore[misc]
    """Rotation on every use; reuse revokes the family; the family's lifetime is absolute."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshView | None:
        row = tokens.use_refresh_token(self.server.db, refresh_token, self.request.client.client_id)
        return RefreshView(row) if row is not None else None

    def authenticate_user(self, refresh_token: RefreshView) -> User | None:
        grant = self.server.db.get(TokenGrant, refresh_token.row.grant_id)
        user = _user(self.server.db, grant.user_id if grant else None)
        if user is None:
            raise InvalidGrantError("The refresh token is no longer valid.")
        return user

    def revoke_old_credential(self, refresh_token: RefreshView) -> None:
        """Nothing to do: the token was used up atomically when it was presented."""

    def token_grant(self, scope: str | None) -> TokenGrant:
        db: Session = self.server.db
        grant = db.get(TokenGrant, self.request.refresh_token.row.grant_id)
        assert grant is not None
        return grant

    def create_token_response(self) -> Any:
        status, token, headers = super().create_token_response()
        if "openid" in (token.get("scope") or "").split():
            token["id_token"] = id_token(
                self.server.db,
                self.server.runtime,
                client=self.request.client.row,
                user=self.request.user,
                grant=self.request.token_grant,
                access_token=token.get("access_token"),
                nonce=None,
            )
        return status, token, headers


# Client credentials -------------------------------------------------------------------------

USER_ONLY_SCOPES = frozenset({"openid", "offline_access"})


class ClientCredentialsGrant(IssuingMixin, grants.ClientCredentialsGrant):  # type: ignore[misc]
    """For e-service-to-e-service calls: a token for the client itself, within its scopes."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: OAuthClient = self.request.client
        allowed = [s for s in client.registered_scopes if s not in USER_ONLY_SCOPES]
        requested = (self.request.payload.scope or "").split()
        if any(s not in allowed for s in requested):
            raise InvalidScopeError("The client may not request this scope.")
        self.request.granted_scope = " ".join(requested or allowed)

    def create_token_response(self) -> Any:
        token = self.generate_token(scope=self.request.granted_scope, include_refresh_token=False)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def token_grant(self, scope: str | None) -> TokenGrant:
        return tokens.grant_for_client(
            self.server.db,
            self.request.client.row,
            scope or "",
            lifetime=self.server.settings.access_token_lifetime,
        )
