"""Sending email: a file outbox for development, SMTP for real, a console log without content."""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import stat
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import structlog

from idp.config import Settings
from idp.logging import configure_logging
from idp.mail import (
    ConsoleMailer,
    Mail,
    MailError,
    OutboxMailer,
    SmtpMailer,
    build_mailer,
    mask_email,
)

from ..conftest import make_settings

MAIL = Mail(
    to="anahit@example.am",
    subject="Ձեր մեկանգամյա կոդը",
    text="Your code is 123456",
    html="<p>Your code is <b>123456</b></p>",
)


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough of an SMTP server to receive messages (RFC 5321)."""

    server: SmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost test SMTP")
        while raw := self.rfile.readline():
            command = raw.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-localhost")
                if self.server.auth:
                    self.reply("250-AUTH PLAIN")
                self.reply("250 8BITMIME")
            elif verb == "AUTH":
                _, _mechanism, blob = command.split(" ", 2)
                self.server.logins.append(base64.b64decode(blob).decode())
                self.reply("235 ok")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.server.envelope.append(command)
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                self.server.messages.append(b"".join(lines))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, auth: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.auth = auth
        self.messages: list[bytes] = []
        self.envelope: list[str] = []
        self.logins: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    server = SmtpServer(auth=getattr(request, "param", False))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_outbox_writes_one_private_json_file_per_message(tmp_path: Path) -> None:
    outbox = OutboxMailer(tmp_path / "outbox", "eID <no-reply@eid.example.am>")
    outbox.send(MAIL)
    outbox.send(Mail(to="vardan@example.am", subject="second", text="two"))
    files = sorted((tmp_path / "outbox").iterdir())
    assert len(files) == 2
    assert all(f.suffix == ".json" for f in files)
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    first = json.loads(files[0].read_text(encoding="utf-8"))
    assert first["to"] == "anahit@example.am"
    assert first["from"] == "eID <no-reply@eid.example.am>"
    assert first["subject"] == MAIL.subject
    assert first["text"] == MAIL.text and first["html"] == MAIL.html
    assert [m["subject"] for m in outbox.messages()] == [MAIL.subject, "second"]


def test_outbox_that_cannot_be_written_raises_mail_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(MailError):
        OutboxMailer(blocker / "outbox", "x@example.am").send(MAIL)


def test_smtp_delivers_text_and_html(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer(
        host="127.0.0.1",
        port=smtp_server.port,
        sender="eID <no-reply@eid.example.am>",
        security="none",
    )
    mailer.send(MAIL)
    assert len(smtp_server.messages) == 1
    received = message_from_bytes(smtp_server.messages[0], policy=policy.default)
    assert isinstance(received, EmailMessage)
    assert received["To"] == "anahit@example.am"
    assert received["Subject"] == MAIL.subject
    assert received["Message-ID"].endswith("@eid.example.am>")
    text = received.get_body(("plain",))
    html = received.get_body(("html",))
    assert text is not None and "123456" in text.get_content()
    assert html is not None and "<b>123456</b>" in html.get_content()
    assert any("anahit@example.am" in line for line in smtp_server.envelope)


@pytest.mark.parametrize("smtp_server", [True], indirect=True)
def test_smtp_logs_in_when_a_username_is_set(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer(
        host="127.0.0.1",
        port=smtp_server.port,
        sender="no-reply@eid.example.am",
        security="none",
        username="relay-user",
        password="relay-pass",
    )
    mailer.send(MAIL)
    assert smtp_server.logins == ["\0relay-user\0relay-pass"]
    assert len(smtp_server.messages) == 1


def test_smtp_never_falls_back_to_plain_text_when_starttls_is_asked(
    smtp_server: SmtpServer,
) -> None:
    mailer = SmtpMailer(
        host="127.0.0.1", port=smtp_server.port, sender="x@eid.example.am", security="starttls"
    )
    with pytest.raises(MailError):
        mailer.send(MAIL)
    assert smtp_server.messages == []


def test_unreachable_mail_server_raises_mail_error() -> None:
    mailer = SmtpMailer(
        host="127.0.0.1", port=free_port(), sender="x@eid.example.am", security="none", timeout=2
    )
    with pytest.raises(MailError, match="refused"):
        mailer.send(MAIL)


def test_console_logs_that_mail_was_sent_without_its_content() -> None:
    configure_logging(json=True, level="INFO")  # the tests log at WARNING
    try:
        with structlog.testing.capture_logs() as logs:
            ConsoleMailer().send(MAIL)
    finally:
        configure_logging(json=False, level="WARNING")
    assert logs
    dumped = json.dumps(logs, ensure_ascii=False, default=str)
    assert "123456" not in dumped
    assert "anahit@example.am" not in dumped
    assert "a***@example.am" in dumped


def test_mask_email() -> None:
    assert mask_email("anahit@example.am") == "a***@example.am"
    assert mask_email("x@y.am") == "x***@y.am"
    assert mask_email("nonsense") == "***"


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({}, OutboxMailer),
        ({"mail_backend": "console"}, ConsoleMailer),
        ({"mail_backend": "smtp", "smtp_host": "mail.example.am"}, SmtpMailer),
    ],
)
def test_settings_choose_the_sender(tmp_path: Path, overrides: dict[str, Any], kind: type) -> None:
    settings: Settings = make_settings(tmp_path, "sqlite://", **overrides)
    mailer = build_mailer(settings)
    assert isinstance(mailer, kind)
    if isinstance(mailer, OutboxMailer):
        assert mailer.folder == tmp_path / "data" / "outbox"


def test_smtp_settings_are_passed_on(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        "sqlite://",
        mail_backend="smtp",
        mail_from="eID <no-reply@eid.example.am>",
        smtp_host="mail.example.am",
        smtp_port=465,
        smtp_security="ssl",
        smtp_username="relay",
        smtp_password="s3cret-relay-password",
        smtp_timeout=4,
    )
    mailer = build_mailer(settings)
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port, mailer.security) == ("mail.example.am", 465, "ssl")
    assert (mailer.username, mailer.password) == ("relay", "s3cret-relay-password")
    assert mailer.timeout == 4 and mailer.sender == "eID <no-reply@eid.example.am>"
    assert "s3cret-relay-password" not in repr(settings)
