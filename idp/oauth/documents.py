"""The discovery document and the JWKS as bytes: rendered once, served with a strong ETag.

Both depend only on the settings (fixed for the life of the process) and on the signing keys.
They are rebuilt when the key ring has re-read its folder (`KeyRing.version`: `idp keys rotate`
in any process is seen within the ring's one-second check, as before) and when a key changes
status by the clock (a rotated-in key starts signing, a retired key leaves the JWKS), so they
are never staler than a document built for each request was. A request that presents the
current ETag in `If-None-Match` is answered 304, without a body.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from idp.config import Settings
from idp.oauth.discovery import provider_metadata
from idp.oauth.keys import KeyRing


@dataclass(frozen=True)
class Document:
    """A rendered document and the headers of its answers (200 and 304)."""

    body: bytes
    etag: bytes
    headers: tuple[tuple[bytes, bytes], ...]  # of a 304: ETag and caching
    content_headers: tuple[tuple[bytes, bytes], ...]  # added to a 200: type and length

    @classmethod
    def render(cls, content: dict[str, Any], media_type: str, max_age: int) -> Document:
        body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        headers = (
            (b"etag", etag),
            (b"cache-control", f"public, max-age={max_age}".encode()),
            (b"access-control-allow-origin", b"*"),
        )
        content_headers = (
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
        )
        return cls(body, etag, headers, content_headers)

    def matches(self, if_none_match: str) -> bool:
        """Whether `If-None-Match` names this version (weak comparison, RFC 9110 §13.1.2)."""
        if if_none_match.strip() == "*":
            return True
        etag = self.etag.decode()
        return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


class DocumentResponse(Response):
    """A prebuilt document: 200 with its bytes (none for HEAD), or 304 when the client has it."""

    def __init__(self, document: Document, *, method: str, if_none_match: str | None) -> None:
        self.background = None
        if if_none_match is not None and document.matches(if_none_match):
            self.status_code = 304
            self.body = b""
            self.raw_headers = list(document.headers)
            return
        self.status_code = 200
        self.body = b"" if method == "HEAD" else document.body
        self.raw_headers = [*document.headers, *document.content_headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": self.body})


class PublishedDocuments:
    """The current discovery document and JWKS of one provider."""

    def __init__(self, settings: Settings, keyring: KeyRing) -> None:
        self.settings = settings
        self.keyring = keyring
        self._version = -1
        self._valid_until = 0.0  # Unix time of the next change of a key's status
        self._discovery: Document | None = None
        self._jwks: Document | None = None

    def _current(self) -> None:
        self.keyring.refresh()
        now = time.time()
        if self._version == self.keyring.version and now < self._valid_until:
            return
        version = self.keyring.version
        moment = datetime.fromtimestamp(now, UTC)
        max_age = self.settings.jwks_max_age
        self._discovery = Document.render(
            provider_metadata(self.settings, self.keyring, moment), "application/json", max_age
        )
        self._jwks = Document.render(self.keyring.jwks(moment), "application/jwk-set+json", max_age)
        change = self.keyring.next_change(moment)
        self._valid_until = change.timestamp() if change else float("inf")
        self._version = version

    def discovery(self) -> Document:
        self._current()
        assert self._discovery is not None
        return self._discovery

    def jwks(self) -> Document:
        self._current()
        assert self._jwks is not None
        return self._jwks
