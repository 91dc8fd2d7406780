"""What an outsider sends is bounded: JSON by size and nesting depth wherever it is parsed,
bodies by size before they are read, and a body only once its sender has shown a credential."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.config import Settings
from idp.db.models import InitialAccessToken
from idp.runtime import Runtime
from tests.admin.api_helpers import admin_client, initial_token, token
from tests.protocol.conftest import Flow, authorize, redirect_params, register
from tests.server import ServerProcess, server_env

API = "/admin/api/v1"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
METADATA = {"client_name": "Culture", "redirect_uris": ["https://culture.example.am/cb"]}


def bomb(levels: int = 2000) -> str:
    """JSON nested `levels` deep: a few kilobytes that a recursive parser cannot get through."""
    return "[" * levels + "]" * levels


def uses_left(runtime: Runtime) -> int:
    with runtime.db.read() as db:
        return sum(db.scalars(select(InitialAccessToken.uses_left)))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Nesting bombs get a clear refusal at each door -------------------------------------------------


def test_a_deeply_nested_claims_parameter_is_an_invalid_request(
    client: TestClient, runtime: Runtime
) -> None:
    flow = Flow.new(register(runtime), claims=bomb())
    params = redirect_params(authorize(client, flow))
    assert params["error"] == "invalid_request"
    assert "nested" in params["error_description"]


def test_a_deeply_nested_registration_is_invalid_metadata_and_spends_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    headers = {"Authorization": f"Bearer {initial_token(runtime)}"}
    answer = client.post(
        "/register",
        content=bomb(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client_metadata"
    assert uses_left(runtime) == 1
    assert client.post("/register", json=METADATA, headers=headers).status_code == 201


def test_a_deeply_nested_admin_api_body_is_an_invalid_request(
    client: TestClient, runtime: Runtime
) -> None:
    bearer = {"Authorization": f"Bearer {token(client, admin_client(runtime))}"}
    answer = client.post(
        f"{API}/keys/rotate",
        content='{"alg": ' + bomb() + "}",
        headers={**bearer, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert "nested" in answer.json()["error_description"]


def test_a_client_assertion_with_a_deeply_nested_payload_is_an_invalid_client(
    client: TestClient,
) -> None:
    header = b64(b'{"alg":"RS256"}')
    assertion = f"{header}.{b64(bomb(2400).encode())}.{b64(b'signature')}"
    answer = client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


# A body is read only from a caller with a credential ----------------------------------------


@pytest.mark.parametrize("bearer", [None, "made-up-token"])
def test_registration_without_a_valid_initial_token_is_refused_before_its_body(
    client: TestClient, runtime: Runtime, bearer: str | None
) -> None:
    initial_token(runtime)
    headers = {"Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    answer = client.post("/register", content=bomb(), headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"
    assert uses_left(runtime) == 1


def test_registration_management_checks_its_token_before_the_body(
    client: TestClient, runtime: Runtime
) -> None:
    registered = client.post(
        "/register", json=METADATA, headers={"Authorization": f"Bearer {initial_token(runtime)}"}
    ).json()
    answer = client.put(
        f"/register/{registered['client_id']}",
        content=bomb(),
        headers={"Authorization": "Bearer wrong", "Content-Type": "application/json"},
    )
    assert answer.status_code == 401


def test_the_admin_api_authenticates_before_it_reads_a_body(client: TestClient) -> None:
    answer = client.post(
        f"{API}/keys/rotate",
        content=bomb(),
        headers={"Authorization": "Bearer made-up", "Content-Type": "application/json"},
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"


# Bodies too large are refused before they are read --------------------------------------------


def test_a_body_over_the_limit_is_refused_with_413(client: TestClient, runtime: Runtime) -> None:
    limit = runtime.settings.max_request_body
    headers = {"Authorization": f"Bearer {initial_token(runtime)}"}
    padded = {**METADATA, "client_name": "x" * limit}
    answer = client.post("/register", json=padded, headers=headers)
    assert answer.status_code == 413
    assert answer.json()["error"] == "invalid_request"
    assert uses_left(runtime) == 1

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"grant_type=client_credentials&scope="
        for _ in range(limit // 1024 + 1):
            yield b"a" * 1024

    answer = client.post(
        "/token",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413


@pytest.fixture
def server(tmp_path: Path, settings: Settings, runtime: Runtime) -> Iterator[ServerProcess]:
    process = ServerProcess(server_env(settings), log=tmp_path / "server.log")
    process.start()
    yield process
    process.stop()


def head_only(server: ServerProcess, head: str) -> bytes:
    """Send only the head of a request, announcing a body that never comes, and return the
    first line of the answer. The server must answer without waiting for the body."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        return connection.recv(65536).split(b"\r\n", 1)[0]


def test_idp_serve_answers_an_announced_oversized_body_without_reading_it(
    server: ServerProcess,
) -> None:
    head = "POST /token HTTP/1.1\nHost: idp\nContent-Type: application/json\n"
    first = head_only(server, head + "Content-Length: 1000000000\n")
    assert first == b"HTTP/1.1 413 Request Entity Too Large"


def test_idp_serve_refuses_an_unauthenticated_body_without_reading_it(
    server: ServerProcess, runtime: Runtime
) -> None:
    initial_token(runtime)
    for path in ("/register", f"{API}/keys/rotate"):
        head = (
            f"POST {path} HTTP/1.1\nHost: idp\nContent-Type: application/json\n"
            "Authorization: Bearer made-up-token\nContent-Length: 60000\n"
        )
        assert head_only(server, head) == b"HTTP/1.1 401 Unauthorized", path
