"""The real server: `idp serve` answers, a kill -9 loses nothing, and its files are private."""

from __future__ import annotations

import http.client
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from idp.cli import main
from idp.config import Settings
from idp.runtime import Runtime
from tests.server import ServerProcess, server_env
from tests.signin.helpers import Browser, add_client, events_of


def test_serve_survives_kill_9_without_losing_keys_or_clients(
    tmp_path: Path, settings: Settings, cli_env: Settings
) -> None:
    server = ServerProcess(server_env(settings), log=tmp_path / "server.log")
    server.start()
    try:
        discovery = httpx.get(f"{server.url}/.well-known/openid-configuration").json()
        assert discovery["issuer"] == "http://localhost:8000"
        jwks_before = httpx.get(f"{server.url}/jwks").json()
        assert httpx.get(f"{server.url}/health/ready").status_code == 200
        assert (
            main(
                [
                    "clients",
                    "create",
                    "--name",
                    "Tax",
                    "--client-id",
                    "tax",
                    "--redirect-uri",
                    "https://tax.example.am/cb",
                ]
            )
            == 0
        )

        server.kill()
        server.start()
        assert httpx.get(f"{server.url}/jwks").json() == jwks_before
        assert main(["clients", "show", "tax"]) == 0
    finally:
        server.stop()
    assert "unsafe development default" in (tmp_path / "server.log").read_text()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems start processes with: files readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("usual_umask")
def test_the_embedded_database_its_log_keys_and_secret_are_readable_by_the_owner_only(
    tmp_path: Path,
) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("IDP_")},
        "IDP_DATA_DIR": str(data),  # the embedded database, `idp.db` in it
        "IDP_KEYS_DIR": str(keys),
    }
    command = [sys.executable, "-m", "idp", "db", "upgrade"]
    subprocess.run(command, env=env, check=True, capture_output=True)
    server = ServerProcess(env, log=tmp_path / "server.log")
    server.start()
    try:
        assert httpx.get(f"{server.url}/health/ready").status_code == 200
        database = data / "idp.db"
        files = [database, data / "idp.db-wal", data / "idp.db-shm", data / "secret.key"]
        files += sorted(keys.glob("*.json"))
        assert len(files) == 6
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        assert (mode(data), mode(keys)) == (0o700, 0o700)
    finally:
        server.stop()

    database.chmod(0o644)  # as an earlier version left it
    subprocess.run(command, env=env, check=True, capture_output=True)
    assert mode(database) == 0o600


def failed_sign_ins(
    server: ServerProcess, runtime: Runtime, forwarded_for: list[str]
) -> list[httpx.Response]:
    """Wrong passwords for unknown accounts, each with its own `X-Forwarded-For`."""
    answers = []
    with httpx.Client(base_url=server.url) as http:
        browser = Browser(http, runtime)
        interaction_id = browser.start()
        for n, value in enumerate(forwarded_for):
            page = browser.page(f"/login/{interaction_id}")
            http.headers["X-Forwarded-For"] = value
            answers.append(browser.submit(page, {"username": f"nobody{n}", "password": "x" * 12}))
            del http.headers["X-Forwarded-For"]
    return answers


def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(
    tmp_path: Path, settings: Settings, runtime: Runtime
) -> None:
    add_client(runtime)
    # No proxy configured: whatever the header says, the client is the TCP peer (loopback
    # here), so the per-address limit cannot be dodged by writing another address in it.
    server = ServerProcess(
        server_env(settings, IDP_THROTTLE_IP_MAX_FAILURES="3"), log=tmp_path / "direct.log"
    )
    server.start()
    try:
        answers = failed_sign_ins(server, runtime, [f"198.51.100.{n}" for n in range(4)])
    finally:
        server.stop()
    assert "error=ip_limited" in answers[3].headers["location"]
    assert {event.ip for event in events_of(runtime, "auth.password")} == {"127.0.0.1"}

    # Behind a configured proxy, the address it forwarded counts; what the client wrote
    # further left does not.
    env = server_env(settings, IDP_TRUSTED_PROXIES='["127.0.0.1", "10.0.0.0/8"]')
    server = ServerProcess(env, log=tmp_path / "proxied.log")
    server.start()
    try:
        failed_sign_ins(server, runtime, ["192.0.2.66, 203.0.113.7, 10.1.2.3"])
    finally:
        server.stop()
    assert events_of(runtime, "auth.password")[-1].ip == "203.0.113.7"


def raw_connection(server: ServerProcess) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return connection


def answer_to(connection: socket.socket) -> tuple[int, bytes]:
    """The status and body of the next response on `connection`."""
    response = http.client.HTTPResponse(connection)
    response.begin()
    return response.status, response.read()


def closed_while_sending(connection: socket.socket, data: bytes, pause: float) -> bytes | None:
    """Send `data` a byte at a time; what the server answered once it closed the connection
    (b"" for nothing), or None if it was still open after the last byte."""
    for byte in data:
        try:
            connection.sendall(bytes([byte]))
        except OSError:  # reset by the server
            return b""
        time.sleep(pause)
        connection.setblocking(False)
        try:
            answer = connection.recv(4096)
        except BlockingIOError:
            continue
        except OSError:
            return b""
        finally:
            connection.setblocking(True)
        return answer
    return None


def test_slow_request_heads_are_cut_off_while_others_are_served(
    tmp_path: Path, settings: Settings
) -> None:
    env = server_env(settings, IDP_HTTP_HEADER_TIMEOUT="1")
    server = ServerProcess(env, log=tmp_path / "server.log")
    server.start()
    try:
        # Slowloris: a head sent a byte every 0.1 s would take 20 s; the server closes the
        # connection after about a second, without an answer, and serves others meanwhile.
        slow = raw_connection(server)
        head = b"GET /health/alive HTTP/1.1\r\nHost: localhost\r\n" + b"X-Slow: " + b"a" * 150
        assert httpx.get(f"{server.url}/health/alive").status_code == 200
        assert closed_while_sending(slow, head, 0.1) == b""
        slow.close()
        assert httpx.get(f"{server.url}/health/alive").status_code == 200

        # Silence after a response counts the same: the next head is due as well.
        idle = raw_connection(server)
        idle.sendall(b"GET /health/alive HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status":"alive"}'):
            chunk = idle.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        assert closed_while_sending(idle, b"GET / HTTP/1.1\r\n" + b"X" * 150, 0.1) == b""
        idle.close()

        # And after a body that ends after its response (a 405 here, the body unread).
        early = raw_connection(server)
        early.sendall(
            b"POST /health/alive HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n"
        )
        assert answer_to(early)[0] == 405
        early.sendall(b"hello")
        assert closed_while_sending(early, b"GET / HTTP/1.1\r\n" + b"X" * 150, 0.1) == b""
        early.close()
    finally:
        server.stop()


def test_request_heads_over_the_size_limit_are_refused_with_431(
    tmp_path: Path, settings: Settings
) -> None:
    env = server_env(settings, IDP_HTTP_MAX_HEADER_SIZE="4096")
    server = ServerProcess(env, log=tmp_path / "server.log")
    server.start()
    head = b"GET /health/alive HTTP/1.1\r\nHost: localhost\r\n"
    try:
        # A head still growing past the limit is refused at once, not buffered further.
        big = raw_connection(server)
        big.sendall(head + b"X-Big: " + b"a" * 8192)
        assert answer_to(big) == (431, b"Request header fields too large.")
        big.close()

        # So is a complete one, even arriving all at once; one within the limit is served.
        for filler, status in ((4100, 431), (3900, 200)):
            connection = raw_connection(server)
            connection.sendall(head + b"X-Big: " + b"a" * filler + b"\r\n\r\n")
            assert answer_to(connection)[0] == status
            connection.close()

        # Pipelined requests, more than the limit in all, are each served, even when the
        # last head arrives in two parts.
        one = head + b"\r\n"
        pipelined = raw_connection(server)
        pipelined.sendall(one * 100 + one[:20])
        time.sleep(0.2)
        pipelined.sendall(one[20:])
        answers = b""
        while answers.count(b"HTTP/1.1 ") < 101:
            chunk = pipelined.recv(65536)
            assert chunk, answers
            answers += chunk
        assert answers.count(b"HTTP/1.1 200") == 101
        pipelined.close()
    finally:
        server.stop()


def test_connections_beyond_the_limit_get_503_at_once(tmp_path: Path, settings: Settings) -> None:
    env = server_env(settings, IDP_HTTP_CONCURRENCY_LIMIT="3")
    server = ServerProcess(env, log=tmp_path / "server.log")
    server.start()
    try:
        held = [raw_connection(server) for _ in range(3)]  # say nothing (within the deadline)
        assert httpx.get(f"{server.url}/health/alive").status_code == 503
        for connection in held:
            connection.close()
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/health/alive").status_code != 200:
            assert time.monotonic() < deadline, "the server never served again"
            time.sleep(0.1)
    finally:
        server.stop()


def test_a_response_leaves_in_one_write(tmp_path: Path, settings: Settings) -> None:
    """Head and body in one segment: the first read of a waiting client holds the whole
    response (uvicorn alone sends the head, then the body, in two)."""
    server = ServerProcess(server_env(settings), log=tmp_path / "server.log")
    server.start()
    try:
        connection = raw_connection(server)
        for _ in range(20):
            connection.sendall(b"GET /health/alive HTTP/1.1\r\nHost: localhost\r\n\r\n")
            first = connection.recv(65536)
            assert first.startswith(b"HTTP/1.1 200"), first
            assert first.endswith(b'{"status":"alive"}'), first
        connection.close()
        # HEAD: the head alone; a closed connection still gets what was written before.
        head = raw_connection(server)
        head.sendall(b"HEAD /jwks HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := head.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\n"), answer
        head.close()
    finally:
        server.stop()
