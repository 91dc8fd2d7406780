"""An e-service as Authlib sees it: the `clients` row behind Authlib's client interface."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import ClientMixin, InvalidScopeError

from idp.db.models import Client
from idp.oauth.scopes import KNOWN_SCOPES, RESTRICTED_SCOPES
from idp.oauth.uris import is_loopback
from idp.security import secret_matches

CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Exact string comparison (RFC 9700 §4.1.3), except that the port of an http loopback
    redirect URI of a native app may vary (RFC 8252 §7.3)."""
    if presented == registered:
        return True
    try:
        want, got = urlsplit(registered), urlsplit(presented)
        got_port = got.port
    except ValueError:
        return False
    if want.scheme != "http" or got.scheme != "http" or not is_loopback(want.hostname):
        return False
    if want.hostname != got.hostname or got_port is None:
        return False

    def without_port(parts: tuple[str, str, str, str, str], host: str | None) -> str:
        scheme, _netloc, path, query, fragment = parts
        name = f"[{host}]" if host and ":" in host else (host or "")
        return urlunsplit((scheme, name, path, query, fragment))

    return without_port(want, want.hostname) == without_port(got, got.hostname)


class OAuthClient(ClientMixin):  # type: ignore[misc]
    """Wraps a `Client` row; every protocol decision about the client is made here."""

    def __init__(self, row: Client) -> None:
        self.row = row

    # Identity -------------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        return self.row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    @property
    def is_public(self) -> bool:
        return self.row.token_endpoint_auth_method == "none"

    @property
    def requires_pkce(self) -> bool:
        return self.is_public or self.row.require_pkce

    @property
    def id_token_signed_response_alg(self) -> str | None:
        return self.row.id_token_signed_response_alg

    # Redirects and grants -------------------------------------------------------------------

    def get_default_redirect_uri(self) -> str | None:
        return None  # OpenID Connect requires `redirect_uri` in every request

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri_matches(uri, redirect_uri) for uri in self.row.redirect_uris)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.check_grant_type("authorization_code")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (self.row.grant_types or [])

    # Authentication -------------------------------------------------------------------------

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(client_secret, self.row.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        registered = self.row.token_endpoint_auth_method
        if endpoint in ("introspection", "revocation"):
            return method == registered and method in CONFIDENTIAL_METHODS
        return method == registered

    # Scopes ---------------------------------------------------------------------------------

    @property
    def registered_scopes(self) -> list[str]:
        return (self.row.scope or "").split()

    def may_use_scope(self, scope: str) -> bool:
        if scope in RESTRICTED_SCOPES and scope not in (self.row.restricted_scopes or []):
            return False
        return scope in self.registered_scopes

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this e-service may have. Unknown scope values are ignored
        (OIDC Core §3.1.2.1); a restricted one it is not authorised for is refused."""
        requested = list(dict.fromkeys((scope or "").split()))
        for value in requested:
            if value in RESTRICTED_SCOPES and not self.may_use_scope(value):
                raise InvalidScopeError(f"This e-service may not request the scope {value}.")
        allowed = [s for s in requested if s in KNOWN_SCOPES and self.may_use_scope(s)]
        return " ".join(allowed)
