"""The benchmark's e-services and citizens, created through the services layer.

Run with the provider's `IDP_*` settings in the environment; prints one JSON object with the
client secrets and the citizens' one-time-code seeds for the load scripts.

The e-services match the peer's (`../shared/peers/README.md`): `bench-opaque`, `bench-es256`
and `bench-rs256` (client credentials; JWT access tokens signed ES256 / RS256), plus
`bench-web`, a first-party (consent-free) web e-service for the sign-in, code and refresh
scenarios. Citizens `bench-0000`... all share one password, hashed once (argon2id at the
configured parameters) so that seeding does not take minutes; each has its own TOTP seed.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
from datetime import UTC, datetime

from sqlalchemy import insert

from idp.auth.passwords import hash_password
from idp.config import load_settings
from idp.db.models import TotpCredential, User
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services.clients import NewClient

PASSWORD = "bench citizen passphrase 7419"
REDIRECT_URI = "https://eservice.bench.example/callback"
CLIENTS = {
    "bench-opaque": NewClient(
        name="Bench opaque",
        client_id="bench-opaque",
        grant_types=["client_credentials"],
        scope="profile",
    ),
    "bench-es256": NewClient(
        name="Bench ES256",
        client_id="bench-es256",
        grant_types=["client_credentials"],
        scope="profile",
        access_token_format="jwt",
        id_token_signed_response_alg="ES256",
    ),
    "bench-rs256": NewClient(
        name="Bench RS256",
        client_id="bench-rs256",
        grant_types=["client_credentials"],
        scope="profile",
        access_token_format="jwt",
        id_token_signed_response_alg="RS256",
    ),
    "bench-web": NewClient(
        name="Bench web",
        client_id="bench-web",
        redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile email offline_access",
        first_party=True,
    ),
}


def create(citizens: int) -> dict[str, object]:
    runtime = Runtime.build(load_settings())
    out: dict[str, object] = {"password": PASSWORD, "redirect_uri": REDIRECT_URI}
    secrets_by_client: dict[str, str | None] = {}
    with runtime.db.transaction() as session:
        for client_id, new in CLIENTS.items():
            registered = client_service.register_client(session, new, actor="bench")
            secrets_by_client[client_id] = registered.client_secret
    out["clients"] = secrets_by_client
    password_hash = hash_password(PASSWORD)
    now = datetime.now(UTC)
    users = []
    with runtime.db.transaction() as session:
        for n in range(citizens):
            seed = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
            username = f"bench-{n:05d}"
            user_id = session.scalar(
                insert(User)
                .values(
                    sub=secrets.token_urlsafe(24),
                    username=username,
                    email=f"{username}@bench.example",
                    email_verified=True,
                    given_name="Bench",
                    family_name=f"Citizen {n}",
                    password_hash=password_hash,
                    password_changed_at=now,
                )
                .returning(User.id)
            )
            session.execute(
                insert(TotpCredential).values(
                    user_id=user_id,
                    secret_encrypted=runtime.secrets.encrypt(seed),
                    confirmed_at=now,
                )
            )
            users.append({"username": username, "totp": seed})
    out["users"] = users
    runtime.db.dispose()
    return out


if __name__ == "__main__":
    # usage: python -m bench.fixtures COUNT OUT.json (the provider's log goes to stdout)
    with open(sys.argv[2], "w") as out:
        json.dump(create(int(sys.argv[1])), out)
