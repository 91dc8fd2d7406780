"""Signing keys as administrative actions: list, generate, rotate, retire (audited)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from idp import events
from idp.config import Settings
from idp.oauth.keys import SUPPORTED_ALGS, Alg, KeyRing, KeyRingError, KeyState
from idp.services.errors import InvalidInput


def _alg(alg: str) -> Alg:
    if alg not in SUPPORTED_ALGS:
        raise InvalidInput(f"algorithm {alg!r} is not one of {', '.join(SUPPORTED_ALGS)}")
    return alg


def list_keys(keyring: KeyRing, now: datetime | None = None) -> list[KeyState]:
    keyring.load()
    return keyring.states(now)


def generate_key(
    session: Session, keyring: KeyRing, alg: str, *, actor: str, now: datetime | None = None
) -> KeyState:
    """Add a key that signs at once (for an algorithm that has no key yet)."""
    now = now or datetime.now(UTC)
    keyring.load()
    if keyring.signing_key(alg, now) is not None:
        raise InvalidInput(f"an {alg} key is already signing; use rotate to replace it")
    key = keyring.generate(_alg(alg), activates_at=now, now=now)
    events.record(session, "admin.key_generated", actor=actor, kid=key.kid, alg=key.alg)
    return keyring.state(key, now)


def rotate_key(
    session: Session,
    keyring: KeyRing,
    settings: Settings,
    alg: str,
    *,
    actor: str,
    immediately: bool = False,
    now: datetime | None = None,
) -> KeyState:
    """Publish a new key now; it starts signing after `key_activation_delay` (or at once with
    `immediately`, for a compromised key), and the key it replaces stays published until every
    token it signed has expired."""
    now = now or datetime.now(UTC)
    delay = timedelta(seconds=0 if immediately else settings.key_activation_delay)
    key = keyring.generate(_alg(alg), activates_at=now + delay, now=now)
    events.record(
        session,
        "admin.key_rotated",
        actor=actor,
        kid=key.kid,
        alg=key.alg,
        activates_at=key.activates_at.isoformat(),
    )
    return keyring.state(key, now)


def retire_key(
    session: Session,
    keyring: KeyRing,
    kid: str,
    *,
    actor: str,
    unpublish: bool = False,
    now: datetime | None = None,
) -> KeyState:
    try:
        state = keyring.retire(kid, unpublish=unpublish, now=now)
    except KeyRingError as exc:
        raise InvalidInput(str(exc)) from None
    events.record(session, "admin.key_retired", actor=actor, kid=kid, unpublished=unpublish)
    return state


def describe(state: KeyState) -> dict[str, Any]:
    key = state.key
    return {
        "kid": key.kid,
        "alg": key.alg,
        "status": state.status,
        "created_at": key.created_at.isoformat(),
        "activates_at": key.activates_at.isoformat(),
        "signing_until": state.signing_until.isoformat() if state.signing_until else None,
        "published_until": state.published_until.isoformat() if state.published_until else None,
    }
