"""Demo data for a first look: a citizen, an administrator and two e-services, created once and
reused (and the indicators' synthetic history, `idp.demo_history`); and the two example
e-services of `clients/` started beside the provider.

`idp demo --port P` puts the provider at P and the e-services at P+1 and P+2 (or where
`--elicensing-port` and `--ejustice-port` say); the e-services' registrations follow them. The
banner comes last, once the three servers answer, so that no start-up log buries it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

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
HOST = "127.0.0.1"  # the demo's servers listen on this machine only
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


@dataclass(frozen=True)
class Ports:
    """Where the demo's three servers listen."""

    provider: int
    elicensing: int
    ejustice: int

    @classmethod
    def around(
        cls, provider: int, elicensing: int | None = None, ejustice: int | None = None
    ) -> Ports:
        """The provider at `provider`, the e-services at the next two ports unless given.
        Raises ValueError for ports beyond 65535 or a port given twice."""
        ports = cls(
            provider,
            provider + 1 if elicensing is None else elicensing,
            provider + 2 if ejustice is None else ejustice,
        )
        for name, port in ports.named():
            if not 1 <= port <= 65535:
                raise ValueError(
                    f"the {name} port would be {port}, beyond 65535: choose a lower --port, or "
                    "the e-services' ports with --elicensing-port and --ejustice-port"
                )
        if len({port for _, port in ports.named()}) != 3:
            raise ValueError("the provider and the two e-services need three different ports")
        return ports

    def named(self) -> list[tuple[str, int]]:
        return [
            ("provider", self.provider),
            (ELICENSING_ID, self.elicensing),
            (EJUSTICE_ID, self.ejustice),
        ]

    def url(self, name: str) -> str:
        """The address of one of the servers, as browsers and the registrations name it."""
        return f"http://localhost:{dict(self.named())[name]}"


def busy_port(ports: Ports) -> tuple[str, int] | None:
    """The first of the demo's ports that another program listens on, with its use."""
    for name, port in ports.named():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
            try:
                probe.bind((HOST, port))
            except OSError:
                return name, port
    return None


def _listening(port: int) -> bool:
    """Whether a server accepts connections at `port` (a bare connection, logged by none)."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


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


def _saved(runtime: Runtime) -> dict[str, Any]:
    path = _credentials_file(runtime)
    return json.loads(path.read_text()) if path.exists() else {}


def current_code(runtime: Runtime, *, admin: bool = False) -> str | None:
    """The demo citizen's (or administrator's) one-time code of this moment; None before
    `idp demo` ran here. Reads the saved key only: the registrations (and the ports a running
    demo uses) stay."""
    secret = _saved(runtime).get("admin_totp_secret" if admin else "totp_secret")
    return pyotp.TOTP(secret).now() if secret else None


def seed(
    runtime: Runtime, *, elicensing_url: str = ELICENSING_URL, ejustice_url: str = EJUSTICE_URL
) -> DemoCredentials:
    """Create the demo citizen and e-services if they are missing; return their credentials.

    The generated secrets are kept (owner-readable only) in `data_dir/demo.json`, so that a
    second run prints the same credentials.
    """
    path = _credentials_file(runtime)
    saved = _saved(runtime)
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
        _register(session, EJUSTICE_ID, ejustice_url)
        if not _register(session, ELICENSING_ID, elicensing_url):
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


MOVING_ADDRESSES = (
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "jwks_uri",
)


def _register(session: Session, client_id: str, base_url: str) -> bool:
    """Make the registration of an example e-service name its addresses at `base_url` (they
    move with the demo's ports). False if it is not registered yet (e-licensing is then
    registered by the caller, who keeps its secret); e-justice, which has no secret, is
    registered here."""
    wanted = eservice(client_id, base_url)
    stored = session.scalar(select(Client).where(Client.client_id == client_id))
    if stored is None:
        if client_id != EJUSTICE_ID:
            return False
        client_service.register_client(session, wanted, actor=ACTOR)
    else:  # its addresses move with the ports; an update that changes nothing writes nothing
        moved = {name: getattr(wanted, name) for name in MOVING_ADDRESSES}
        client_service.update_client(
            session, client_id, client_service.ClientChanges(moved), actor=ACTOR
        )
    return True


def banner(runtime: Runtime, creds: DemoCredentials, *, listening: int | None = None) -> str:
    """What the demo prints once everything is up. `listening`: the provider's port, told
    when it is not the issuer's (an issuer set in the configuration)."""
    issuer = runtime.settings.issuer
    provider = issuer
    if listening is not None and not issuer.rstrip("/").endswith(f":{listening}"):
        provider += f"   (listening on {HOST}:{listening})"
    lines = [
        "",
        "  National digital-identity provider: demo",
        f"  Provider          {provider}",
        f"  Discovery         {issuer}/.well-known/openid-configuration",
        f"  Your account      {issuer}/account",
        "",
        f"  Demo citizen      username {creds.username}   password {creds.password}",
        f"  One-time codes    add this key to an authenticator app: {creds.totp_secret}",
        "                    (or run `.venv/bin/idp demo-code` for the current code)",
        f"  e-licensing       {creds.elicensing_url}   (client_secret_basic)",
        f"  e-justice         {creds.ejustice_url}   (private_key_jwt)",
        "",
        f"  Administrator     username {ADMIN_USERNAME}   password {creds.admin_password}",
        f"                    key {creds.admin_totp_secret} (`.venv/bin/idp demo-code --admin`)",
        f"  Indicators        {issuer}/admin/indicators   open data {issuer}/stats/kpis.csv",
        "                    DEMO DATA: 90 days of synthetic history for five e-services",
        "                    (three named '(demo data)', citizens named synthetic-NNNNN);",
        "                    your own sign-ins add to it within a minute.",
        "",
    ]
    if listening is not None:
        lines += [
            "  Sign in at one e-service, open the other: no second sign-in. Sign out at either:",
            "  both are signed out. Press Ctrl-C to stop everything.",
            "",
        ]
    return "\n".join(lines)


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


class DemoFailed(Exception):
    """The demo could not run; the message says why in one line."""


def run(
    runtime: Runtime, creds: DemoCredentials, ports: Ports, *, announce: Callable[[str], None]
) -> None:
    """Start both example e-services and the provider, `announce` the banner once all three
    answer, and serve until Ctrl-C; then stop the e-services. Raises DemoFailed when a server
    cannot start (its own message is printed above)."""
    import uvicorn

    from idp.serving import uvicorn_options

    server = uvicorn.Server(
        uvicorn.Config(
            "idp.app:asgi",
            factory=True,
            host=HOST,
            port=ports.provider,
            **uvicorn_options(runtime.settings),
        )
    )
    failures: list[str] = []
    text = banner(runtime, creds, listening=ports.provider)
    started: list[subprocess.Popen[bytes]] = []
    try:
        started += start_eservices(runtime, creds)  # none without `clients/` (a wheel)
        eservices = list(zip((ELICENSING_ID, EJUSTICE_ID), started, strict=False))
        threading.Thread(
            target=_announce_when_up,
            args=(server, eservices, ports, lambda: announce(text), failures),
            daemon=True,
        ).start()
        server.run()
    except KeyboardInterrupt:  # Ctrl-C before the server took over, or as it stopped
        pass
    except SystemExit:  # the server could not start (it said why)
        if not server.started:
            failures.append(f"the provider could not start on port {ports.provider}")
    finally:
        stop(started)
    if failures:
        raise DemoFailed(failures[0])


def _announce_when_up(
    server: Any,
    eservices: list[tuple[str, subprocess.Popen[bytes]]],
    ports: Ports,
    announce: Callable[[], None],
    failures: list[str],
) -> None:
    """Wait until the provider has started and both e-services accept connections, then
    announce; stop the provider if an e-service stops instead."""
    started = dict(eservices)
    waited = [port for name, port in ports.named() if name in started]
    while not server.should_exit:
        for name, process in eservices:
            if process.poll() is not None:
                failures.append(f"{name} stopped as it started (exit code {process.returncode})")
                server.should_exit = True
                return
        if server.started and all(_listening(port) for port in waited):
            announce()
            return
        time.sleep(0.1)


def start_eservices(runtime: Runtime, creds: DemoCredentials) -> list[subprocess.Popen[bytes]]:
    """Start both example e-services (uvicorn child processes); none if `clients/` is absent."""
    if not (SOURCE_ROOT / "clients" / "common").is_dir():
        return []
    processes = []
    for module, env in eservice_env(runtime, creds).items():
        url = env[next(k for k in env if k.endswith("BASE_URL"))]
        port = url.rsplit(":", 1)[1].split("/")[0]
        command = [sys.executable, "-m", "uvicorn", "--factory", f"clients.{module}.app:create_app"]
        command += ["--host", HOST, "--port", port, "--no-server-header"]
        # Problems only: their start-up lines would follow the banner, and an access log
        # would show the authorization codes in their callback URLs.
        command += ["--log-level", "warning", "--no-access-log"]
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
