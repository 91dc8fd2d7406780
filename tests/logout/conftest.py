"""Fixtures for single logout: e-services with real back-channel receivers, a signed-in
citizen, and the codes that make an e-service part of a session."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.testclient import TestClient

from idp.app import create_app
from idp.config import Settings
from idp.db.models import User
from idp.runtime import Runtime
from tests.conftest import make_settings
from tests.protocol.conftest import EService, Flow, make_citizen, register, sign_in, tokens_for

SIGNED_OUT = "https://eservice.example.am/signed-out"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Receiver:
    """An e-service's back-channel logout endpoint: a real HTTP server on the loopback
    interface, which can be down (nothing listening on its port) and come up later."""

    def __init__(self, port: int | None = None, status: int = 200) -> None:
        self.port = port or free_port()
        self.status = status
        self.tokens: list[str] = []
        self.arrived = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel-logout"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                owner.tokens.extend(form.get("logout_token", []))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                owner.arrived.set()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Every receiver made in a test is stopped at its end."""
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.stop()


@pytest.fixture
def receiver(receivers: list[Receiver]) -> Receiver:
    made = Receiver().start()
    receivers.append(made)
    return made


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """E-services on this machine may be called; no background worker (tests drive it)."""
    return make_settings(
        tmp_path,
        database_url,
        client_fetch_private_addresses=True,
        backchannel_logout_poll_interval=0,
    )


def eservice(runtime: Runtime, name: str, **options: Any) -> EService:
    """A first-party e-service (no consent page) with a post-logout redirect URI."""
    values: dict[str, Any] = {
        "name": name,
        "first_party": True,
        "redirect_uris": [f"https://{name}.example.am/callback"],
        "post_logout_redirect_uris": [f"https://{name}.example.am/signed-out"],
    }
    values.update(options)
    return register(runtime, **values)


@dataclass
class SignedIn:
    """A citizen signed in to some e-services in the test browser, with their tokens."""

    citizen: User
    sid: str
    tokens: dict[str, dict[str, Any]]


def sign_in_to(
    http: TestClient, runtime: Runtime, citizen: User, *services: EService, **params: str
) -> SignedIn:
    sid = sign_in(http, runtime, citizen)
    tokens = {s.client_id: tokens_for(http, Flow.new(s, **params)) for s in services}
    return SignedIn(citizen, sid, tokens)


def verify_logout_token(http: TestClient, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(http.get("/jwks").json())
    decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256", "PS256", "EdDSA"])
    return {"header": decoded.header, **decoded.claims}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """The provider over HTTP, from a browser that prefers English."""
    app = create_app(runtime=runtime)
    headers = {"Accept-Language": "en"}
    with TestClient(app, base_url=runtime.settings.issuer, headers=headers) as http:
        yield http


@pytest.fixture
def citizen(runtime: Runtime) -> User:
    return make_citizen(runtime)


__all__ = ["SIGNED_OUT", "Receiver", "SignedIn", "eservice", "sign_in_to", "verify_logout_token"]
