"""Server-side sessions of an e-service, in a small SQLite file.

The browser's cookie holds only a random key; the citizen's claims and tokens stay here, so
that a back-channel logout (which arrives without any cookie) can end the sessions it names.
Only the SHA-256 of the key is stored.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key_hash TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    sid TEXT,
    data TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_sessions_sid ON sessions (sid);
CREATE INDEX IF NOT EXISTS ix_sessions_sub ON sessions (sub);
CREATE TABLE IF NOT EXISTS logout_tokens (
    jti TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SessionStore:
    """Sessions keyed by a random cookie value; found again by `sid` or `sub` at logout."""

    def __init__(self, path: Path, *, lifetime: int = 8 * 3600) -> None:
        self.path = path
        self.lifetime = lifetime
        self._lock = threading.Lock()
        path.touch(mode=0o600, exist_ok=True)  # it holds tokens: owner-readable only
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = sqlite3.connect(self.path, timeout=5)
            try:
                with db:  # one transaction
                    yield db
            finally:
                db.close()

    def create(self, *, sub: str, sid: str | None, data: dict[str, Any]) -> str:
        """Store a new session and return the key for the cookie."""
        key = secrets.token_urlsafe(32)
        with self._connect() as db:
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (time.time(),))
            db.execute(
                "INSERT INTO sessions (key_hash, sub, sid, data, expires_at) VALUES (?,?,?,?,?)",
                (_hash(key), sub, sid, json.dumps(data), time.time() + self.lifetime),
            )
        return key

    def get(self, key: str | None) -> dict[str, Any] | None:
        if not key:
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT data FROM sessions WHERE key_hash = ? AND expires_at >= ?",
                (_hash(key), time.time()),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def update(self, key: str, data: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE sessions SET data = ? WHERE key_hash = ?", (json.dumps(data), _hash(key))
            )

    def delete(self, key: str | None) -> None:
        if key:
            with self._connect() as db:
                db.execute("DELETE FROM sessions WHERE key_hash = ?", (_hash(key),))

    def end(self, *, sid: str | None, sub: str | None) -> int:
        """End the sessions a logout token names: by `sid` (and `sub` when both are given), or
        every session of `sub`. Returns how many ended."""
        clauses = []
        values = []
        if sid:
            clauses.append("sid = ?")
            values.append(sid)
        if sub:
            clauses.append("sub = ?")
            values.append(sub)
        if not clauses:
            return 0
        with self._connect() as db:
            cursor = db.execute(f"DELETE FROM sessions WHERE {' AND '.join(clauses)}", values)  # noqa: S608
            return cursor.rowcount

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT count(*) FROM sessions").fetchone()[0])

    def first_use_of_jti(self, jti: str, expires_at: float) -> bool:
        """Remember a logout token's `jti`; False if it was seen before (a replay)."""
        with self._connect() as db:
            db.execute("DELETE FROM logout_tokens WHERE expires_at < ?", (time.time(),))
            try:
                db.execute(
                    "INSERT INTO logout_tokens (jti, expires_at) VALUES (?, ?)", (jti, expires_at)
                )
            except sqlite3.IntegrityError:
                return False
        return True
