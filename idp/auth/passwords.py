"""Passwords: NIST SP 800-63B rules and argon2id hashing."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp.auth.blocklist import is_blocked

MIN_LENGTH = 8
RECOMMENDED_LENGTH = 15
MAX_LENGTH = 256  # well above NIST's 64; bounds hashing cost

# OWASP minimum for argon2id is m=19 MiB, t=2, p=1; by default we use more memory. The
# process's settings choose (`configure`, from `Runtime.build`).
HASHER = PasswordHasher(time_cost=2, memory_cost=47104, parallelism=1)
_DUMMY_HASH = HASHER.hash("a password that no one has")


def configure(memory_kib: int, iterations: int) -> None:
    """Hash and check passwords with these argon2id costs from now on (the settings'
    `password_hash_memory_kib` and `password_hash_iterations`)."""
    global HASHER, _DUMMY_HASH
    if (HASHER.memory_cost, HASHER.time_cost) == (memory_kib, iterations):
        return
    HASHER = PasswordHasher(time_cost=iterations, memory_cost=memory_kib, parallelism=1)
    _DUMMY_HASH = HASHER.hash("a password that no one has")


BLOCKED_REASON = "this password is too common or appeared in a data breach"


class PasswordRejected(ValueError):
    """The password may not be used; the message tells the citizen why."""


def normalize(password: str) -> str:
    """Unicode NFKC, so the same characters typed on any keyboard verify (NIST 800-63B)."""
    return unicodedata.normalize("NFKC", password)


def check_policy(password: str, *, context: Iterable[str | None] = ()) -> None:
    """Refuse passwords NIST says may not be used. No composition rules."""
    normalized = normalize(password)
    length = len(normalized)
    if length < MIN_LENGTH:
        raise PasswordRejected(
            f"password must have at least {MIN_LENGTH} characters "
            f"({RECOMMENDED_LENGTH} or more recommended)"
        )
    if length > MAX_LENGTH:
        raise PasswordRejected(f"password must have at most {MAX_LENGTH} characters")
    folded = normalized.casefold()
    for word in context:
        if word and len(word) >= 3 and folded == normalize(word).casefold():
            raise PasswordRejected("password must not be your username or your name")
    if is_blocked(normalized):
        raise PasswordRejected(BLOCKED_REASON)


def hash_password(password: str) -> str:
    return HASHER.hash(normalize(password))


def verify_password(password: str, stored_hash: str | None) -> bool:
    """Check the whole password in comparable time whether or not a hash exists."""
    try:
        return HASHER.verify(stored_hash or _DUMMY_HASH, normalize(password)) and bool(stored_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)
