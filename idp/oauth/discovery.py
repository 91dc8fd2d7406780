"""OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414): what is supported, no more."""

from __future__ import annotations

from typing import Any

from idp.config import Settings
from idp.oauth.keys import KeyRing


def provider_metadata(settings: Settings, keyring: KeyRing) -> dict[str, Any]:
    issuer = settings.issuer
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks",
        "id_token_signing_alg_values_supported": keyring.signing_algs(),
    }
