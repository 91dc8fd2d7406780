"""End to end: a real provider process, and relying parties built on certified libraries."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import users as user_service
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.npm import npm_ci
from tests.server import ServerProcess, free_port

NODE_DIR = Path(__file__).parent / "node"
REDIRECT_URI = "https://eservice.example.am/callback"
PASSWORD = "ambling-otter-under-ararat"


@dataclass
class Provider:
    url: str
    client_id: str
    client_secret: str
    username: str
    password: str
    totp_secret: str


@pytest.fixture(scope="session")
def node_rp() -> Path:
    """openid-client installed from the committed lockfile (cached in tests/e2e/node)."""
    assert shutil.which("node"), "Node.js 20 and npm are needed for the end-to-end tests"
    npm_ci(NODE_DIR, NODE_DIR / "node_modules" / "openid-client" / "package.json")
    return NODE_DIR / "rp.mjs"


@pytest.fixture
def provider(tmp_path: Path, database_url: str) -> Iterator[Provider]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, database_url, issuer=issuer)
    runtime = Runtime.build(settings)
    secret = pyotp.random_base32(32)
    with runtime.db.transaction() as db:
        registered = client_service.register_client(
            db,
            client_service.NewClient(
                name="Tax service",
                redirect_uris=[REDIRECT_URI],
                scope="openid profile email",
            ),
            actor="test",
        )
        user_service.create_user(
            db,
            runtime.secrets,
            user_service.NewUser(
                username="anahit",
                password=PASSWORD,
                email="anahit@example.am",
                given_name="Anahit",
                family_name="Petrosyan",
                totp_secret=secret,
            ),
            actor="test",
        )
        client_id, client_secret = registered.client.client_id, registered.client_secret
    runtime.db.dispose()
    assert client_secret is not None
    env = {
        "IDP_ISSUER": issuer,
        "IDP_DATABASE_URL": settings.effective_database_url,
        "IDP_DATA_DIR": str(settings.data_dir),
        "IDP_KEYS_DIR": str(settings.keys_dir),
        "IDP_SECRET_KEY": TEST_SECRET_KEY,
    }
    server = ServerProcess(env, port=port, log=tmp_path / "server.log")
    server.start()
    try:
        yield Provider(issuer, client_id, client_secret, "anahit", PASSWORD, secret)
    finally:
        server.stop()
