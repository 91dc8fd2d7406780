"""The key pair of an e-service that authenticates with `private_key_jwt` (RFC 7523).

Made at first start in the e-service's data folder (owner-readable only, never committed); its
public half is served at `/jwks.json`, the URL registered with the provider as `jwks_uri`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc.jwk import RSAKey

ALG = "RS256"
ASSERTION_LIFETIME = 60  # seconds: a client assertion is used once, right away


def load_or_create_key(path: Path) -> RSAKey:
    if path.exists():
        return RSAKey.import_key(json.loads(path.read_text()))
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ALG}, auto_kid=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(key.as_dict(private=True), handle)
    os.replace(temporary, path)
    return key


def public_jwks(key: RSAKey) -> dict[str, Any]:
    """The JWK set to publish: public parameters only."""
    return {"keys": [{**key.as_dict(private=False), "use": "sig", "alg": ALG}]}


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """`private_key_jwt` with the key's `kid` in the header and a one-minute lifetime; each
    assertion carries a fresh random `jti` (the provider accepts each one once)."""

    def __init__(self, key: RSAKey) -> None:
        super().__init__(alg=ALG)
        self.key = key

    def sign(self, auth: Any, token_endpoint: str) -> str:
        now = int(time.time())
        return str(
            private_key_jwt_sign(
                self.key,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=ALG,
                header={"kid": self.key.kid},
                issued_at=now,
                expires_at=now + ASSERTION_LIFETIME,
            )
        )
