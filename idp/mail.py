"""Sending email through a pluggable sender.

`build_mailer(settings)` picks the sender named by `settings.mail_backend`:

- `smtp`: a mail server (STARTTLS, TLS from the start, or plain for a local relay), with a timeout;
- `outbox`: one JSON file per message in `data_dir/outbox/`, for development and tests;
- `console`: a log line saying that a message was sent, never its content.

A sender that cannot deliver raises `MailError`, so callers can show a friendly message.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Literal, Protocol

from idp.config import Settings
from idp.files import private_folder
from idp.logging import get_logger

log = get_logger("idp.mail")


@dataclass(frozen=True)
class Mail:
    """One message to one recipient: plain text, optionally an HTML alternative."""

    to: str
    subject: str
    text: str
    html: str | None = None


class MailError(Exception):
    """The message could not be handed to the mail system."""


class Mailer(Protocol):
    def send(self, message: Mail) -> None: ...


def mask_email(address: str) -> str:
    """`anahit@example.am` → `a***@example.am`: enough for the citizen to recognise it."""
    local, _, domain = address.partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"


class OutboxMailer:
    """Writes each message as a JSON file in a folder (development and tests)."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = Path(folder)
        self.sender = sender

    def send(self, message: Mail) -> None:
        now = datetime.now(UTC)
        record = {"from": self.sender, **asdict(message), "date": now.isoformat()}
        name = f"{now.strftime('%Y%m%dT%H%M%S.%f')}-{uuid.uuid4().hex[:12]}.json"
        try:
            private_folder(self.folder)
            partial = self.folder / f".{name}.tmp"
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle, ensure_ascii=False, indent=2)
            partial.replace(self.folder / name)
        except OSError as exc:
            raise MailError(f"cannot write to the outbox {self.folder}: {exc}") from exc
        log.info("mail.sent", backend="outbox", to=mask_email(message.to), file=name)

    def messages(self) -> list[dict[str, Any]]:
        """Every message in the outbox, oldest first."""
        if not self.folder.is_dir():
            return []
        return [
            json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(self.folder.glob("*.json"))
        ]


class ConsoleMailer:
    """Logs that a message was sent, without its content (it may hold a code)."""

    def send(self, message: Mail) -> None:
        log.info("mail.sent", backend="console", to=mask_email(message.to))


class SmtpMailer:
    """Sends through a mail server."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        security: Literal["starttls", "ssl", "none"] = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout

    def build(self, message: Mail) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = format_datetime(datetime.now(UTC))
        domain = parseaddr(self.sender)[1].partition("@")[2] or None
        email["Message-ID"] = make_msgid(domain=domain)
        email.set_content(message.text)
        if message.html is not None:
            email.add_alternative(message.html, subtype="html")
        return email

    def send(self, message: Mail) -> None:
        email = self.build(message)
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=context)
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(email)
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("mail.failed", backend="smtp", to=mask_email(message.to), error=str(exc))
            raise MailError(f"mail server {self.host}:{self.port} refused the message") from exc
        log.info("mail.sent", backend="smtp", to=mask_email(message.to))


def outbox_folder(settings: Settings) -> Path:
    return Path(settings.data_dir) / "outbox"


def build_mailer(settings: Settings) -> Mailer:
    """The sender the settings ask for."""
    if settings.mail_backend == "smtp":
        return SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.mail_from,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout,
        )
    if settings.environment == "production":
        log.warning("mail.not_delivered", backend=settings.mail_backend)
    if settings.mail_backend == "console":
        return ConsoleMailer()
    return OutboxMailer(outbox_folder(settings), settings.mail_from)
