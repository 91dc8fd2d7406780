"""Settings of an example e-service, read from environment variables with its own prefix.

For e-licensing the prefix is `ELICENSING_`, for e-justice `EJUSTICE_`:

- `<PREFIX>ISSUER`: the provider's issuer URL (discovery is `<issuer>/.well-known/...`).
- `<PREFIX>CLIENT_ID`: the client id the provider's operator registered.
- `<PREFIX>CLIENT_SECRET`: the client secret (e-services using `client_secret_basic`).
- `<PREFIX>BASE_URL`: the e-service's own public base URL (its redirect URI is
  `<base>/callback`, its post-logout redirect URI `<base>/signed-out`).
- `<PREFIX>SCOPE`: the scopes asked for (default `openid profile email phone`).
- `<PREFIX>DATA_DIR`: folder for its session store, cookie key and (e-justice) key pair.
- `<PREFIX>SESSION_SECRET`: key that signs its cookie (default: generated in the data folder).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SCOPE = "openid profile email phone"


@dataclass(frozen=True)
class RPSettings:
    """One e-service's configuration."""

    slug: str
    name: str
    issuer: str
    client_id: str
    client_secret: str | None
    base_url: str
    scope: str
    data_dir: Path
    session_secret: str

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.base_url}/signed-out"

    @property
    def backchannel_logout_uri(self) -> str:
        return f"{self.base_url}/backchannel-logout"

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @classmethod
    def from_env(
        cls, prefix: str, *, slug: str, name: str, default_port: int, needs_secret: bool
    ) -> RPSettings:
        def env(key: str, default: str | None = None) -> str | None:
            value = os.environ.get(f"{prefix}{key}", "").strip()
            return value or default

        data_dir = Path(env("DATA_DIR", f"data/{slug}") or f"data/{slug}")
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        client_secret = env("CLIENT_SECRET")
        if needs_secret and not client_secret:
            raise SystemExit(f"{prefix}CLIENT_SECRET is not set: register the e-service first")
        return cls(
            slug=slug,
            name=name,
            issuer=(env("ISSUER", "http://localhost:8000") or "").rstrip("/"),
            client_id=env("CLIENT_ID", slug) or slug,
            client_secret=client_secret,
            base_url=(env("BASE_URL", f"http://localhost:{default_port}") or "").rstrip("/"),
            scope=env("SCOPE", DEFAULT_SCOPE) or DEFAULT_SCOPE,
            data_dir=data_dir,
            session_secret=env("SESSION_SECRET") or _stored_secret(data_dir / "session.key"),
        )


def _stored_secret(path: Path) -> str:
    """A random key kept in `path` (owner-readable only), made on first use."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()
