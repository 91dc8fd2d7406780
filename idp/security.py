"""Secrets at rest, hashing of bearer secrets and constant-time comparison."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idp.config import Settings
from idp.files import private_folder


def random_token(nbytes: int = 32) -> str:
    """An unguessable URL-safe string (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def random_identifier(nbytes: int = 16) -> str:
    """An unguessable URL-safe identifier that starts with a letter or digit, so that it can be
    typed as a command-line argument without being taken for an option."""
    while True:
        value = secrets.token_urlsafe(nbytes)
        if value[0].isalnum():
            return value


def hash_secret(value: str) -> str:
    """SHA-256 of a high-entropy secret (tokens, codes, client secrets): stored, never the value."""
    return hashlib.sha256(value.encode()).hexdigest()


def secret_matches(value: str, stored_hash: str | None) -> bool:
    """Constant-time check of a presented secret against its stored hash."""
    if not stored_hash:
        hmac.compare_digest("0" * 64, hash_secret(value))
        return False
    return hmac.compare_digest(hash_secret(value), stored_hash)


def master_key(settings: Settings) -> bytes:
    """The configured secret key, or a development key generated once in `data_dir`."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        private_folder(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def derive_key(master: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose, so that no two uses share key material."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
        master
    )


class SecretBox:
    """Authenticated encryption of small secrets at rest (one-time-code seeds), and keyed
    pseudonyms."""

    def __init__(self, master: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(master, "idp secrets at rest")))
        self._pseudonyms = derive_key(master, "idp pseudonyms")

    def pseudonym(self, *parts: str) -> str:
        """A stable reference to `parts` (HMAC-SHA256, hex) that reveals nothing about them
        without the secret key; a new `secret_key` gives new pseudonyms."""
        message = "\x1f".join(parts).encode()
        return hmac.new(self._pseudonyms, message, hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the configured secret_key") from exc
