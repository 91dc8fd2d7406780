"""The Starlette adapter for Authlib's authorization server.

Authlib's server is synchronous. A view reads the request once (`await read_input(request)`),
then runs the Authlib call in the thread pool with a `ProtocolServer` bound to one database
transaction. Modelled on Authlib's Flask integration: `create_oauth2_request` wraps the input,
`handle_response` turns Authlib's `(status, body, headers)` into a Starlette response.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request, UnsupportedGrantTypeError
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from idp.oauth import client_cache
from idp.oauth.client_auth import (
    FetchedKeys,
    PrivateKeyJwt,
    ProviderClientAuthentication,
    audiences,
)
from idp.oauth.clients import OAuthClient
from idp.runtime import Runtime

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_PARAMETER_LENGTH = 8192


class UnsupportedGrant(UnsupportedGrantTypeError):  # type: ignore[misc]
    """`unsupported_grant_type` whose description never echoes the request."""

    def get_error_description(self) -> str:
        return "Supported grant types: authorization_code, refresh_token, client_credentials."


@dataclass(frozen=True)
class HttpInput:
    """Everything the protocol reads from an HTTP request, read once in the event loop."""

    method: str
    path: str
    headers: Headers
    query: list[tuple[str, str]]
    form: list[tuple[str, str]] = field(default_factory=list)
    form_ok: bool = True  # False: a POST whose body is not a form, or a NUL character

    @property
    def items(self) -> list[tuple[str, str]]:
        return [*self.query, *self.form]


async def read_input(request: Request) -> HttpInput:
    form: list[tuple[str, str]] = []
    form_ok = True
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == FORM_TYPE:
            data = await request.form()
            form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
        else:
            form_ok = False
    query = list(request.query_params.multi_items())
    if any("\x00" in name or "\x00" in value for name, value in [*query, *form]):
        form_ok = False  # no database stores it, no protocol needs it
    return HttpInput(
        method=request.method,
        path=request.url.path,
        headers=request.headers,
        query=query,
        form=form,
        form_ok=form_ok,
    )


class InputPayload(OAuth2Payload):  # type: ignore[misc]
    """Request parameters; the first value of each name (duplicates are checked separately)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in items:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, issuer: str, source: HttpInput) -> None:
        query = f"?{urlencode(source.query)}" if source.query else ""
        # The URI as e-services see it (the issuer's origin), whatever proxies are in between.
        super().__init__(method=source.method, uri=f"{issuer}{source.path}{query}")
        self.headers = source.headers
        self.source = source
        self.payload = InputPayload(source.items)
        self._args = InputPayload(source.query).data
        self._form = InputPayload(source.form).data
        self.sso: Any = None  # the SSO session an authorization code is issued from
        self.endpoint_url = f"{issuer}{source.path}"

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def stored_request(issuer: str, params: dict[str, str]) -> HttpInput:
    """An authorization request rebuilt from the parameters an interaction kept."""
    return HttpInput(method="GET", path="/authorize", headers=Headers(), query=list(params.items()))


class ProtocolServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's authorization server bound to one database transaction."""

    def __init__(
        self, runtime: Runtime, db: Session, *, client_keys: FetchedKeys | None = None
    ) -> None:
        """`client_keys`: the key set a `private_key_jwt` client publishes at its `jwks_uri`,
        fetched beforehand (`idp.oauth.assertion_keys`)."""
        from idp.oauth import endpoints, grants  # grants import this module

        super().__init__(scopes_supported=None)
        self.runtime = runtime
        self.settings = runtime.settings
        self.db = db
        self._client_auth = ProviderClientAuthentication(
            self.query_client,
            PrivateKeyJwt(db, self.settings, audiences(self.settings.issuer), client_keys),
        )
        self.register_grant(
            grants.AuthorizationCodeGrant,
            [grants.S256CodeChallenge(required=True), grants.OpenIDCode(require_nonce=False)],
        )
        self.register_grant(grants.RefreshTokenGrant)
        self.register_grant(grants.ClientCredentialsGrant)
        self.register_endpoint(endpoints.IntrospectionEndpoint)
        self.register_endpoint(endpoints.RevocationEndpoint)

    # Authlib's hooks ------------------------------------------------------------------------

    def query_client(self, client_id: str) -> OAuthClient | None:
        if not client_id or len(client_id) > 128:
            return None
        cache = client_cache.for_engine(self.runtime.db.engine, self.settings.client_cache_seconds)
        row = cache.get(self.db, client_id)
        if row is None or row.disabled:
            return None
        return OAuthClient(row)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Nothing to do: tokens are stored as they are minted (`idp.oauth.tokens.mint`)."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals: events are recorded where things happen."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        assert isinstance(request, HttpInput)
        return StarletteOAuth2Request(self.settings.issuer, request)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        header_map = dict(headers)
        if isinstance(body, dict):
            content = json.dumps(body).encode()
            header_map.setdefault("Content-Type", "application/json")
        else:
            content = (body or "").encode() if isinstance(body, str) else body
        header_map.setdefault("Cache-Control", "no-store")
        media = header_map.pop("Content-Type", None)
        return Response(content, status_code=status, headers=header_map, media_type=media)

    def handle_error_response(self, request: OAuth2Request, error: OAuth2Error) -> Response:
        if error.redirect_uri:
            from idp.oauth.responses import authorization_error

            return self.handle_response(*authorization_error(self.settings, request, error))
        response: Response = super().handle_error_response(request, error)
        return response

    def get_token_grant(self, request: OAuth2Request) -> Any:
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError:
            raise UnsupportedGrant(request.payload.grant_type) from None

    def validate_requested_scope(self, scope: str | None) -> None:
        """Unknown scope values are ignored (OIDC Core §3.1.2.1); clients filter the rest."""
