"""What a real server's log holds: never a secret of a citizen or an e-service, whatever flow
ran, and of an unhandled exception one plain traceback without any local variable."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from idp.config import Settings
from idp.logging import configure_logging, get_logger
from idp.mail import OutboxMailer, outbox_folder
from idp.runtime import Runtime
from tests.conftest import make_settings
from tests.protocol.conftest import EService, Flow, register
from tests.server import ServerProcess, free_port, server_env
from tests.signin.helpers import Browser, Citizen, add_citizen

REDIRECT_URI = "https://tax.example.am/callback"
NEW_PASSWORD = "blue lantern over quiet river"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, port: int) -> Settings:
    """The provider's settings, its issuer the server's own address."""
    return make_settings(tmp_path, database_url, issuer=f"http://127.0.0.1:{port}")


def wait_for_mail(runtime: Runtime, count: int) -> dict[str, Any]:
    """The `count`th message of the outbox, once the server has written it (after answering)."""
    mailer = OutboxMailer(outbox_folder(runtime.settings), "")
    deadline = time.monotonic() + 30
    while len(mailer.messages()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    messages = mailer.messages()
    assert len(messages) >= count, messages
    return messages[count - 1]


class Citizens:
    """A citizen's browser against the real server, noting every secret it sees."""

    def __init__(self, server: ServerProcess, runtime: Runtime, citizen: Citizen) -> None:
        self.http = httpx.Client(base_url=server.url)
        self.browser = Browser(self.http, runtime)
        self.runtime = runtime
        self.citizen = citizen
        self.secrets: dict[str, str] = {"password": citizen.password}

    def note(self, name: str, value: str) -> str:
        self.secrets[name] = value
        return value

    def note_cookies(self) -> None:
        for cookie in self.http.cookies.jar:
            if cookie.value and len(cookie.value) >= 16:  # random values, not the language
                self.note(f"cookie {cookie.name}", cookie.value)

    def authorize(self, flow: Flow) -> str:
        """Start an authorization request; the sign-in page it leads to."""
        started = self.browser.get("/authorize", params=flow.params)
        assert started.status_code == 303, started.text
        self.note_cookies()
        return str(started.headers["location"])

    def sign_in(self, login: str, password: str) -> httpx.Response:
        """Password, then a one-time code from the authenticator app."""
        sent = self.browser.submit(
            self.browser.page(login), {"username": self.citizen.username, "password": password}
        )
        assert sent.headers["location"] == f"{login}/totp", sent.headers["location"]
        code = self.note("one-time code", self.citizen.code())
        done = self.browser.submit(self.browser.page(sent.headers["location"]), {"code": code})
        self.note_cookies()
        return done


def code_flow(user: Citizens, service: EService) -> None:
    """A whole authorization code flow: sign-in, code, tokens, userinfo, refresh, revocation."""
    flow = Flow.new(service, scope="openid profile")
    done = user.sign_in(user.authorize(flow), user.citizen.password)
    back = user.browser.get(done.headers["location"])
    assert back.status_code == 303 and back.headers["location"].startswith(REDIRECT_URI)
    query = parse_qs(urlsplit(back.headers["location"]).query)
    code = user.note("authorization code", query["code"][0])
    user.note("state", flow.params["state"])
    auth = service.basic()
    user.note("client secret", auth[1])
    user.note("code verifier", flow.verifier)
    issued = user.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": flow.verifier,
        },
        auth=auth,
    ).json()
    for name in ("access_token", "refresh_token", "id_token"):
        user.note(name, issued[name])
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert user.http.get("/userinfo", headers=bearer).status_code == 200
    refreshed = user.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        auth=auth,
    ).json()
    user.note("refreshed access token", refreshed["access_token"])
    user.note("refreshed refresh token", refreshed["refresh_token"])
    revoked = user.http.post("/revoke", data={"token": refreshed["refresh_token"]}, auth=auth)
    assert revoked.status_code == 200


def password_reset(user: Citizens, service: EService) -> None:
    """Forgot password, the emailed link, a new password; then sign in with an emailed code."""
    login = user.authorize(Flow.new(service, prompt="login"))
    asked = user.browser.submit(user.browser.page(f"{login}/forgot"), {"username": "anahit"})
    assert asked.headers["location"].endswith("?sent=1")
    link = re.search(r"(/password/reset/[^\s?]+)\S*", wait_for_mail(user.runtime, 1)["text"])
    assert link
    user.note("reset token", link.group(1).rsplit("/", 1)[1])
    user.note("new password", NEW_PASSWORD)
    page = user.browser.page(link.group(0))
    reset = user.browser.submit(page, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert reset.headers["location"].startswith("/password/reset-done")

    sent = user.browser.submit(
        user.browser.page(login), {"username": "anahit", "password": NEW_PASSWORD}
    )
    code_page = user.browser.page(sent.headers["location"])
    mailed = user.browser.submit(code_page, {}, action=f"{login}/email/send")
    code = re.search(r"\b(\d{6})\b", wait_for_mail(user.runtime, 2)["text"])
    assert code
    user.note("emailed code", code.group(1))
    done = user.browser.submit(user.browser.follow(mailed), {"code": code.group(1)})
    assert done.headers["location"].startswith("/authorize/resume/")
    user.note_cookies()


@pytest.fixture
def json_server(tmp_path: Path, settings: Settings, runtime: Runtime) -> Iterator[ServerProcess]:
    port = int(urlsplit(settings.issuer).port or 0)
    env = server_env(settings, IDP_ISSUER=settings.issuer, IDP_LOG_FORMAT="json")
    server = ServerProcess(env, port=port, log=tmp_path / "server.log")
    server.start()
    yield server
    server.stop()


def test_no_secret_of_a_code_flow_or_a_password_reset_reaches_the_log(
    json_server: ServerProcess, runtime: Runtime
) -> None:
    service = register(runtime, redirect_uris=[REDIRECT_URI], first_party=True)
    robot = register(runtime, redirect_uris=[], grant_types=["client_credentials"], scope="")
    user = Citizens(json_server, runtime, add_citizen(runtime))
    code_flow(user, service)
    password_reset(user, service)
    machine = user.http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=robot.basic()
    )
    user.note("client credentials token", machine.json()["access_token"])
    json_server.stop()

    log = json_server.log.read_text()
    assert len(user.secrets) >= 15
    assert leaks(log, user.secrets) == []
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    paths = {line.get("path") for line in lines if line["event"] == "request"}
    assert "/password/reset/[redacted]" in paths  # the flows were logged, the link's token not
    issued = [line for line in lines if line["event"] == "token.issued"]
    assert {line["refresh_token"] for line in issued} == {True, False}  # said, not redacted


def leaks(log: str, values: dict[str, str]) -> list[str]:
    """The names of the values that appear in the log. Six-digit codes count only as whole
    numbers, and not within a time of day (where any six digits may turn up)."""
    text = re.sub(r"\d{8}T\d{6}\.\d+|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+", "<time>", log)
    found = []
    for name, value in values.items():
        pattern = re.escape(value)
        if value.isdigit():
            pattern = rf"(?<!\d){pattern}(?!\d)"
        if re.search(pattern, text):
            found.append(name)
    return found


def test_a_secret_field_that_holds_no_secret_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="INFO")
    try:
        get_logger("idp.test").info(
            "token.issued",
            refresh_token=False,
            code=None,
            access_token="at-123",
            location="https://tax.example.am/cb?code=c-456&state=s-789&iss=https%3A%2F%2Fidp",
        )
        line = json.loads(capsys.readouterr().err)
    finally:
        configure_logging(json=False, level="WARNING")
        logging.getLogger().setLevel(logging.WARNING)
    assert line["refresh_token"] is False and line["code"] is None
    assert line["access_token"] == "[redacted]"
    assert "c-456" not in line["location"] and "s-789" not in line["location"]
    assert line["location"].startswith("https://tax.example.am/cb?code=")
    assert "iss=https" in line["location"]


def test_a_reset_token_stays_out_of_the_log_whatever_becomes_of_the_request(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    token = secrets.token_urlsafe(32)
    configure_logging(json=True, level="INFO")
    try:
        refused = client.post(f"/password/reset/{token}", content=b"x" * 100_000)
        unknown = client.get(f"/password/reset/{token}/more")
        err = capsys.readouterr().err
    finally:
        configure_logging(json=False, level="WARNING")
        logging.getLogger().setLevel(logging.WARNING)
    assert (refused.status_code, unknown.status_code) == (413, 404)
    lines = [json.loads(line) for line in err.splitlines()]
    provider = "\n".join(json.dumps(line) for line in lines if line["logger"] != "httpx")
    assert token not in provider  # (the test's own HTTP client logs what it asked for)
    assert provider.count('"path": "/password/reset/[redacted]') == 2


# Unhandled exceptions ---------------------------------------------------------------------


class FailingServer(ServerProcess):
    """The application of `idp serve` with a route that raises (tests/failing_app.py)."""

    def command(self) -> list[str]:
        return [sys.executable, "-c", f"from tests.failing_app import serve; serve({self.port})"]


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_an_unhandled_exception_is_logged_once_without_locals_headers_or_cookies(
    tmp_path: Path, settings: Settings, runtime: Runtime, log_format: str
) -> None:
    env = server_env(settings, IDP_LOG_FORMAT=log_format)
    server = FailingServer(env, log=tmp_path / "server.log", cwd=Path(__file__).parent.parent)
    server.start()
    hidden: dict[str, Callable[[str], dict[str, str]]] = {
        "cookie": lambda value: {"Cookie": f"idp_session={value}"},
        "header": lambda value: {"X-Api-Key": value},
        "authorization": lambda value: {"Authorization": f"Bearer {value}"},
    }
    values = {name: secrets.token_urlsafe(24) for name in hidden}
    headers: dict[str, str] = {}
    for name, header in hidden.items():
        headers.update(header(values[name]))
    try:
        answer = httpx.get(f"{server.url}/fail", headers=headers)
    finally:
        server.stop()
    assert answer.status_code == 500
    assert answer.json()["error"] == "server_error"

    log = server.log.read_text()
    assert log.count("Traceback (most recent call last)") == 1, log
    assert log.count("RuntimeError: failing on purpose") == 1
    assert leaks(log, values) == []
    assert "api_key =" not in log and "'x-api-key'" not in log  # no local variables


def test_each_request_writes_one_json_line_with_its_id_and_none_at_warning(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    configure_logging(json=True, level="INFO")
    try:
        answer = client.get("/jwks?x=1", headers={"X-Request-ID": "trace-0001-abc"})
        get_logger("idp.test").info("other.event", request_id="trace-0001-abc")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        configure_logging(json=True, level="WARNING")
        client.get("/jwks")
        quiet = capsys.readouterr().err
    finally:
        configure_logging(json=False, level="WARNING")
        logging.getLogger().setLevel(logging.WARNING)
    [request] = [line for line in lines if line["event"] == "request"]
    [other] = [line for line in lines if line["event"] == "other.event"]
    assert answer.headers["x-request-id"] == "trace-0001-abc"
    assert request == {
        "method": "GET",
        "path": "/jwks",  # never the query
        "status": 200,
        "duration_ms": request["duration_ms"],
        "event": "request",
        "request_id": "trace-0001-abc",
        "level": "info",
        "timestamp": request["timestamp"],
        "logger": "idp.http",
    }
    assert isinstance(request["duration_ms"], float) and request["timestamp"].endswith("Z")
    # The fields every line of ours has, as the processors give them to any other line.
    assert set(request) - {"method", "path", "status", "duration_ms"} == set(other)
    assert quiet == ""
