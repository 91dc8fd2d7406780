"""Signing keys: JSON files in a folder, published in the JWKS, rotated without a gap.

Each key is one file ``<kid>.json`` (mode 0600) holding the private JWK and its schedule:
``activates_at`` (when it starts signing; a rotated-in key is published before that) and an
optional ``retired_at`` (when it stopped signing). A key of an algorithm stops signing when a newer
key of the same algorithm activates, and stays published until every token it signed has expired.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from idp.files import FILE_MODE, private_folder, restrict

Alg = Literal["RS256", "ES256", "PS256", "EdDSA"]
SUPPORTED_ALGS: tuple[Alg, ...] = ("RS256", "ES256", "PS256", "EdDSA")
INITIAL_ALGS: tuple[Alg, ...] = ("RS256", "ES256")
Status = Literal["next", "active", "retiring", "expired"]
PrivateKey = RSAKey | ECKey | OKPKey


class KeyRingError(Exception):
    """A key operation that cannot be done (unknown kid, last signing key, ...)."""


def _generate(alg: Alg) -> PrivateKey:
    key: PrivateKey
    if alg in ("RS256", "PS256"):
        key = RSAKey.generate_key(2048, private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", private=True)
    else:
        key = OKPKey.generate_key("Ed25519", private=True)
    return key


def _import(data: dict[str, Any]) -> PrivateKey:
    kty = data.get("kty")
    if kty == "RSA":
        return RSAKey.import_key(data)
    if kty == "EC":
        return ECKey.import_key(data)
    if kty == "OKP":
        return OKPKey.import_key(data)
    raise ValueError(f"unsupported key type {kty!r}")


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass
class SigningKey:
    kid: str
    alg: Alg
    key: PrivateKey
    created_at: datetime
    activates_at: datetime
    retired_at: datetime | None = None
    path: Path | None = field(default=None, compare=False)

    def public_jwk(self) -> dict[str, Any]:
        data = self.key.as_dict(private=False)
        data.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return data

    def to_file(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "alg": self.alg,
            "created_at": self.created_at.isoformat(),
            "activates_at": self.activates_at.isoformat(),
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
            "jwk": self.key.as_dict(private=True),
        }

    @classmethod
    def from_file(cls, path: Path) -> SigningKey:
        data = json.loads(path.read_text())
        created = _parse_time(data["created_at"])
        activates = _parse_time(data["activates_at"])
        assert created is not None and activates is not None
        return cls(
            kid=data["kid"],
            alg=data["alg"],
            key=_import(data["jwk"]),
            created_at=created,
            activates_at=activates,
            retired_at=_parse_time(data.get("retired_at")),
            path=path,
        )


def _order(key: SigningKey) -> tuple[datetime, datetime, str]:
    """Which of two keys of one algorithm is the newer: the later to activate, then to be made."""
    return (key.activates_at, key.created_at, key.kid)


@dataclass(frozen=True)
class KeyState:
    """Where a key stands at a given instant."""

    key: SigningKey
    status: Status
    signing_until: datetime | None
    published_until: datetime | None


class KeyRing:
    """The keys in a folder, re-read when the folder changes (e.g. after `idp keys rotate`)."""

    def __init__(self, directory: Path, *, max_token_lifetime: int) -> None:
        self.directory = directory
        self.max_token_lifetime = timedelta(seconds=max_token_lifetime)
        self._keys: list[SigningKey] = []
        self._loaded_mtime: float | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self.version = 0  # counts the loads: what was built from the keys is stale when it moves

    # Loading --------------------------------------------------------------------------------

    def _mtime(self) -> float | None:
        try:
            return self.directory.stat().st_mtime_ns / 1e9
        except FileNotFoundError:
            return None

    def load(self) -> None:
        with self._lock:
            mtime = self._mtime()
            keys = []
            if self.directory.is_dir():
                for path in sorted(self.directory.glob("*.json")):
                    keys.append(SigningKey.from_file(path))
            self._keys = keys
            self._loaded_mtime = mtime
            self.version += 1
            self._checked_at = time.monotonic()

    def refresh(self, *, interval: float = 1.0) -> None:
        """Re-read the folder if it changed; checks at most once per `interval` seconds."""
        if time.monotonic() - self._checked_at < interval and self._loaded_mtime is not None:
            return
        self._checked_at = time.monotonic()
        if self._mtime() != self._loaded_mtime:
            self.load()

    @property
    def keys(self) -> list[SigningKey]:
        return list(self._keys)

    # Schedule -------------------------------------------------------------------------------

    def state(self, key: SigningKey, now: datetime) -> KeyState:
        successors = [
            other.activates_at
            for other in self._keys
            if other.alg == key.alg
            and other.kid != key.kid
            and _order(other) > _order(key)
            and (other.retired_at is None or other.retired_at > other.activates_at)
        ]
        ends = [t for t in [key.retired_at, *successors] if t is not None]
        signing_until = min(ends) if ends else None
        if key.activates_at > now:
            return KeyState(key, "next", signing_until, None)
        if signing_until is None or signing_until > now:
            published = None if signing_until is None else signing_until + self.max_token_lifetime
            return KeyState(key, "active", signing_until, published)
        published_until = signing_until + self.max_token_lifetime
        status: Status = "retiring" if published_until > now else "expired"
        if key.retired_at is not None and key.retired_at == key.activates_at:
            status = "expired"  # unpublished at once (compromised key)
            published_until = key.retired_at
        return KeyState(key, status, signing_until, published_until)

    def states(self, now: datetime | None = None) -> list[KeyState]:
        now = now or datetime.now(UTC)
        return sorted(
            (self.state(key, now) for key in self._keys),
            key=lambda s: (s.key.alg, s.key.activates_at),
        )

    def next_change(self, now: datetime | None = None) -> datetime | None:
        """The next instant a key changes status (starts or stops signing, leaves the JWKS)."""
        now = now or datetime.now(UTC)
        instants = [
            instant
            for state in self.states(now)
            for instant in (state.key.activates_at, state.signing_until, state.published_until)
            if instant is not None and instant > now
        ]
        return min(instants, default=None)

    def signing_key(self, alg: str, now: datetime | None = None) -> SigningKey | None:
        """The key that signs `alg` now: the most recently activated active one."""
        now = now or datetime.now(UTC)
        active = [s.key for s in self.states(now) if s.key.alg == alg and s.status == "active"]
        return max(active, key=_order) if active else None

    def signing_algs(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        return sorted({s.key.alg for s in self.states(now) if s.status == "active"})

    def jwks(self, now: datetime | None = None) -> dict[str, Any]:
        """The public keys e-services may see signatures from: next, active and retiring."""
        now = now or datetime.now(UTC)
        published = [s.key.public_jwk() for s in self.states(now) if s.status != "expired"]
        return {"keys": published}

    def public_key(self, kid: str, now: datetime | None = None) -> PrivateKey | None:
        """The key with `kid`, if it is still published (for verifying our own tokens)."""
        now = now or datetime.now(UTC)
        for state in self.states(now):
            if state.key.kid == kid and state.status != "expired":
                return state.key.key
        return None

    # Signing --------------------------------------------------------------------------------

    def sign(
        self,
        claims: dict[str, Any],
        *,
        alg: str,
        typ: str | None = None,
        now: datetime | None = None,
    ) -> str:
        key = self.signing_key(alg, now)
        if key is None:
            raise KeyRingError(f"no active {alg} signing key")
        header: dict[str, Any] = {"alg": alg, "kid": key.kid}
        if typ:
            header["typ"] = typ
        return jwt.encode(header, claims, key.key, algorithms=[alg])

    # Changing the folder --------------------------------------------------------------------

    @contextlib.contextmanager
    def _folder_lock(self) -> Iterator[None]:
        private_folder(self.directory)
        with open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, key: SigningKey) -> None:
        path = self.directory / f"{key.kid}.json"
        tmp = self.directory / f".{key.kid}.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.fchmod(fd, FILE_MODE)  # also when a leftover temporary file had another mode
        with os.fdopen(fd, "w") as handle:
            json.dump(key.to_file(), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        key.path = path

    def ensure_initial(self, now: datetime | None = None) -> list[SigningKey]:
        """Give an empty folder one active key per initial algorithm; returns the keys made.
        Key files found readable by others are made owner-only."""
        made: list[SigningKey] = []
        with self._folder_lock():
            self.load()
            for key in self._keys:
                if key.path is not None:
                    restrict(key.path)
            if self._keys:
                return made
            now = now or datetime.now(UTC)
            for alg in INITIAL_ALGS:
                made.append(self._add(alg, activates_at=now, now=now))
            self.load()
        return made

    def _add(self, alg: Alg, *, activates_at: datetime, now: datetime) -> SigningKey:
        private = _generate(alg)
        while not private.thumbprint()[0].isalnum():  # a kid an operator can type as an argument
            private = _generate(alg)
        key = SigningKey(
            kid=private.thumbprint(),
            alg=alg,
            key=private,
            created_at=now,
            activates_at=activates_at,
        )
        self._write(key)
        return key

    def generate(
        self, alg: Alg, *, activates_at: datetime, now: datetime | None = None
    ) -> SigningKey:
        """Add a key that starts signing at `activates_at` (published from now on)."""
        if alg not in SUPPORTED_ALGS:
            raise KeyRingError(
                f"unsupported algorithm {alg!r}; choose one of {', '.join(SUPPORTED_ALGS)}"
            )
        with self._folder_lock():
            key = self._add(alg, activates_at=activates_at, now=now or datetime.now(UTC))
            self.load()
        return key

    def retire(self, kid: str, *, unpublish: bool = False, now: datetime | None = None) -> KeyState:
        """Stop signing with `kid` now. It stays published until its tokens expire, unless
        `unpublish` (for a compromised key): then it disappears from the JWKS at once."""
        now = now or datetime.now(UTC)
        with self._folder_lock():
            self.load()
            key = next((k for k in self._keys if k.kid == kid), None)
            if key is None:
                raise KeyRingError(f"no key with kid {kid!r}")
            state = self.state(key, now)
            if state.status == "expired" and not unpublish:
                raise KeyRingError(f"key {kid} is already retired and unpublished")
            if state.status == "active":
                others = [
                    s
                    for s in self.states(now)
                    if s.key.alg == key.alg and s.status == "active" and s.key.kid != kid
                ]
                if not others:
                    raise KeyRingError(f"key {kid} is the only key signing {key.alg}; rotate first")
            if unpublish:
                key.activates_at = min(key.activates_at, now)
                key.retired_at = key.activates_at
            elif key.retired_at is None or key.retired_at > now:
                key.retired_at = max(now, key.activates_at)
            self._write(key)
            self.load()
            return self.state(next(k for k in self._keys if k.kid == kid), now)
