"""OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414): what is supported, no more."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from idp.config import Settings
from idp.i18n import LOCALES
from idp.oauth.claims import CLAIMS_SUPPORTED
from idp.oauth.client_auth import ASSERTION_ALGS
from idp.oauth.grants import PROMPTS, SUPPORTED_ACR
from idp.oauth.keys import KeyRing
from idp.oauth.responses import RESPONSE_MODES
from idp.oauth.scopes import KNOWN_SCOPES, RATINGS_SCOPE

TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def provider_metadata(
    settings: Settings, keyring: KeyRing, now: datetime | None = None
) -> dict[str, Any]:
    issuer = settings.issuer
    base = issuer
    signing_algs = keyring.signing_algs(now)
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
        "jwks_uri": f"{base}/jwks",
        "introspection_endpoint": f"{base}/introspect",
        "revocation_endpoint": f"{base}/revoke",
        "registration_endpoint": f"{base}/register",
        "end_session_endpoint": f"{base}/logout",
        # Not a standard member: where an e-service posts its citizens' ratings.
        "ratings_endpoint": f"{base}/ratings",
        "scopes_supported": [*KNOWN_SCOPES, RATINGS_SCOPE],
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": signing_algs,
        "userinfo_signing_alg_values_supported": signing_algs,
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": ENDPOINT_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": ENDPOINT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "acr_values_supported": list(SUPPORTED_ACR),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "prompt_values_supported": sorted(PROMPTS),
        "ui_locales_supported": list(LOCALES),
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
    }
