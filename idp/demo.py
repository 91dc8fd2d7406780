"""Demo data for a first look: a citizen and an e-service, created once and reused."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import select

from idp.db.models import Client, User
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import users as user_service

DEMO_USERNAME = "demo"
DEMO_CLIENT_ID = "demo-eservice"
DEMO_REDIRECT_URI = "http://localhost:8001/callback"
ACTOR = "demo"


@dataclass(frozen=True)
class DemoCredentials:
    username: str
    password: str
    totp_secret: str
    client_id: str
    client_secret: str

    def current_code(self) -> str:
        return pyotp.TOTP(self.totp_secret).now()


def _credentials_file(runtime: Runtime) -> Path:
    return Path(runtime.settings.data_dir) / "demo.json"


def seed(runtime: Runtime) -> DemoCredentials:
    """Create the demo citizen and e-service if they are missing; return their credentials.

    The generated secrets are kept (owner-readable only) in `data_dir/demo.json`, so that a
    second run prints the same credentials.
    """
    path = _credentials_file(runtime)
    saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    creds = DemoCredentials(
        username=DEMO_USERNAME,
        password=saved.get("password") or f"demo-{secrets.token_urlsafe(9)}",
        totp_secret=saved.get("totp_secret") or pyotp.random_base32(32),
        client_id=DEMO_CLIENT_ID,
        client_secret=saved.get("client_secret", ""),
    )
    with runtime.db.transaction() as session:
        if session.scalar(select(User.id).where(User.username == DEMO_USERNAME)) is None:
            user_service.create_user(
                session,
                runtime.secrets,
                user_service.NewUser(
                    username=DEMO_USERNAME,
                    password=creds.password,
                    email="demo.citizen@example.org",
                    given_name="Anahit",
                    family_name="Petrosyan",
                    birthdate="1990-04-12",
                    phone_number="+37410123456",
                    totp_secret=creds.totp_secret,
                ),
                actor=ACTOR,
            )
        if session.scalar(select(Client.id).where(Client.client_id == DEMO_CLIENT_ID)) is None:
            registered = client_service.register_client(
                session,
                client_service.NewClient(
                    name="Demo e-service",
                    client_id=DEMO_CLIENT_ID,
                    redirect_uris=[DEMO_REDIRECT_URI],
                    post_logout_redirect_uris=["http://localhost:8001/"],
                    scope="openid profile email phone",
                    first_party=True,
                ),
                actor=ACTOR,
            )
            assert registered.client_secret is not None
            creds = DemoCredentials(**{**creds.__dict__, "client_secret": registered.client_secret})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(
        json.dumps(
            {
                "password": creds.password,
                "totp_secret": creds.totp_secret,
                "client_secret": creds.client_secret,
            }
        )
    )
    return creds


def banner(runtime: Runtime, creds: DemoCredentials) -> str:
    issuer = runtime.settings.issuer
    return "\n".join(
        [
            "",
            "  National digital-identity provider: demo",
            f"  Provider          {issuer}",
            f"  Discovery         {issuer}/.well-known/openid-configuration",
            "",
            f"  Demo citizen      username {creds.username}   password {creds.password}",
            f"  One-time codes    add this key to an authenticator app: {creds.totp_secret}",
            "                    (or run `.venv/bin/idp demo-code` for the current code)",
            f"  Demo e-service    client_id {creds.client_id}",
            f"                    client_secret {creds.client_secret}",
            "",
        ]
    )
