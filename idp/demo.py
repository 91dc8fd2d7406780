"""Demo data for a first look: a citizen, an administrator and two e-services, created once and
reused (and the indicators' synthetic history, `idp.demo_history`); and the two example
e-services of `clients/` started beside the provider."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import select

from idp.db.models import Client, User
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import users as user_service

DEMO_USERNAME = "demo"
ADMIN_USERNAME = "demo-admin"
ELICENSING_ID = "e-licensing"  # client_secret_basic
EJUSTICE_ID = "e-justice"  # private_key_jwt, keys at its /jwks.json
ELICENSING_URL = "http://localhost:8001"
EJUSTICE_URL = "http://localhost:8002"
DEMO_SCOPE = "openid profile email phone offline_access"
ACTOR = "demo"
# The repository checkout, where `clients/` lives (absent from an installed wheel).
SOURCE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DemoCredentials:
    username: str
    password: str
    totp_secret: str
    client_id: str  # e-licensing's
    client_secret: str
    elicensing_url: str = ELICENSING_URL
    ejustice_url: str = EJUSTICE_URL
    admin_password: str = ""
    admin_totp_secret: str = ""

    def current_code(self, *, admin: bool = False) -> str:
        return pyotp.TOTP(self.admin_totp_secret if admin else self.totp_secret).now()


def eservice(client_id: str, base_url: str) -> client_service.NewClient:
    """The registration of one example e-service at `base_url` (see `clients/`)."""
    ejustice = client_id == EJUSTICE_ID
    return client_service.NewClient(
        name=client_id,
        client_id=client_id,
        redirect_uris=[f"{base_url}/callback"],
        post_logout_redirect_uris=[f"{base_url}/signed-out"],
        backchannel_logout_uri=f"{base_url}/backchannel-logout",
        auth_method="private_key_jwt" if ejustice else "client_secret_basic",
        jwks_uri=f"{base_url}/jwks.json" if ejustice else None,
        scope=DEMO_SCOPE,
        first_party=True,
    )


def _credentials_file(runtime: Runtime) -> Path:
    return Path(runtime.settings.data_dir) / "demo.json"


def seed(
    runtime: Runtime, *, elicensing_url: str = ELICENSING_URL, ejustice_url: str = EJUSTICE_URL
) -> DemoCredentials:
    """Create the demo citizen and e-services if they are missing; return their credentials.

    The generated secrets are kept (owner-readable only) in `data_dir/demo.json`, so that a
    second run prints the same credentials.
    """
    path = _credentials_file(runtime)
    saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    creds = DemoCredentials(
        username=DEMO_USERNAME,
        password=saved.get("password") or f"demo-{secrets.token_urlsafe(9)}",
        totp_secret=saved.get("totp_secret") or pyotp.random_base32(32),
        client_id=ELICENSING_ID,
        client_secret=saved.get("client_secret", ""),
        elicensing_url=elicensing_url,
        ejustice_url=ejustice_url,
        admin_password=saved.get("admin_password") or f"admin-{secrets.token_urlsafe(9)}",
        admin_totp_secret=saved.get("admin_totp_secret") or pyotp.random_base32(32),
    )
    citizen = user_service.NewUser(
        username=DEMO_USERNAME,
        password=creds.password,
        email="demo.citizen@example.org",
        given_name="Anahit",
        family_name="Petrosyan",
        birthdate="1990-04-12",
        phone_number="+37410123456",
        totp_secret=creds.totp_secret,
    )
    admin = user_service.NewUser(
        username=ADMIN_USERNAME,
        password=creds.admin_password,
        given_name="Demo",
        family_name="Administrator",
        totp_secret=creds.admin_totp_secret,
        is_admin=True,
    )
    with runtime.db.transaction() as session:
        for new in (admin, citizen):
            if session.scalar(select(User.id).where(User.username == new.username)) is None:
                user_service.create_user(session, runtime.secrets, new, actor=ACTOR)
        if session.scalar(select(Client.id).where(Client.client_id == EJUSTICE_ID)) is None:
            client_service.register_client(
                session, eservice(EJUSTICE_ID, ejustice_url), actor=ACTOR
            )
        if session.scalar(select(Client.id).where(Client.client_id == ELICENSING_ID)) is None:
            registered = client_service.register_client(
                session, eservice(ELICENSING_ID, elicensing_url), actor=ACTOR
            )
        elif not creds.client_secret:  # the saved secret is lost: issue a new one
            registered = client_service.rotate_secret(session, ELICENSING_ID, actor=ACTOR)
        else:
            registered = None
        if registered is not None:
            assert registered.client_secret is not None
            creds = replace(creds, client_secret=registered.client_secret)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(
        json.dumps(
            {
                "password": creds.password,
                "totp_secret": creds.totp_secret,
                "client_secret": creds.client_secret,
                "admin_password": creds.admin_password,
                "admin_totp_secret": creds.admin_totp_secret,
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
            f"  e-licensing       {creds.elicensing_url}   (client_secret_basic)",
            f"  e-justice         {creds.ejustice_url}   (private_key_jwt)",
            "",
            f"  Administrator     username {ADMIN_USERNAME}   password {creds.admin_password}",
            f"                    key {creds.admin_totp_secret}"
            " (`.venv/bin/idp demo-code --admin`)",
            f"  Indicators        {issuer}/admin/indicators   open data {issuer}/stats/kpis.csv",
            "                    DEMO DATA: 90 days of synthetic history for five e-services",
            "                    (three named '(demo data)', citizens named synthetic-NNNNN);",
            "                    your own sign-ins add to it within a minute.",
            "",
            "  Sign in at one e-service, open the other: no second sign-in. Sign out at either:",
            "  both are signed out. Press Ctrl-C to stop everything.",
            "",
        ]
    )


def eservice_env(runtime: Runtime, creds: DemoCredentials) -> dict[str, dict[str, str]]:
    """Environment of each example e-service process (see `clients/common/settings.py`)."""
    data = Path(runtime.settings.data_dir).resolve()
    issuer = runtime.settings.issuer
    return {
        "elicensing": {
            "ELICENSING_ISSUER": issuer,
            "ELICENSING_CLIENT_ID": ELICENSING_ID,
            "ELICENSING_CLIENT_SECRET": creds.client_secret,
            "ELICENSING_BASE_URL": creds.elicensing_url,
            "ELICENSING_SCOPE": DEMO_SCOPE,
            "ELICENSING_DATA_DIR": str(data / ELICENSING_ID),
        },
        "ejustice": {
            "EJUSTICE_ISSUER": issuer,
            "EJUSTICE_CLIENT_ID": EJUSTICE_ID,
            "EJUSTICE_BASE_URL": creds.ejustice_url,
            "EJUSTICE_SCOPE": DEMO_SCOPE,
            "EJUSTICE_DATA_DIR": str(data / EJUSTICE_ID),
        },
    }


def start_eservices(runtime: Runtime, creds: DemoCredentials) -> list[subprocess.Popen[bytes]]:
    """Start both example e-services (uvicorn child processes); none if `clients/` is absent."""
    if not (SOURCE_ROOT / "clients" / "common").is_dir():
        return []
    processes = []
    for module, env in eservice_env(runtime, creds).items():
        url = env[next(k for k in env if k.endswith("BASE_URL"))]
        port = url.rsplit(":", 1)[1].split("/")[0]
        command = [sys.executable, "-m", "uvicorn", "--factory", f"clients.{module}.app:create_app"]
        command += ["--host", "127.0.0.1", "--port", port, "--no-server-header"]
        processes.append(
            subprocess.Popen(command, cwd=SOURCE_ROOT, env={**os.environ, **env})  # noqa: S603
        )
    return processes


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
