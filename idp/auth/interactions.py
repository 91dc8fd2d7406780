"""Interactions: a validated authorization request waiting for the citizen.

`/authorize` stores one with `start()` and answers `redirect_to_login()`. The interaction is bound
to the browser that made the request: a cookie holds a keyed hash of the interaction id that only
the provider can compute, so a sign-in link sent to someone else's browser leads nowhere. The
sign-in pages keep their progress (who, which factors) on the row; `complete()` uses it up.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.config import Settings
from idp.db.models import Interaction
from idp.i18n import N_
from idp.security import derive_key, hash_secret, master_key, random_token

ID_LENGTH = 32  # characters of the URL-safe id (192 bits)
# Interactions started by the admin console rather than by an e-service's `/authorize`: the
# sign-in pages are the same, but they resume at `/admin/resume/<id>`. (`:` is never in the
# client id of an e-service, so no e-service can pose as the console.)
ADMIN_CONSOLE = "idp:admin"
ADMIN_CONSOLE_NAME = N_("Administration console")
# The citizen's own account pages sign in the same way and resume at `/account/resume/<id>`.
ACCOUNT = "idp:account"
ACCOUNT_NAME = N_("Your account")
INTERNAL_PREFIXES = {ADMIN_CONSOLE: "/admin", ACCOUNT: "/account"}
# Set in `signin` (to the citizen's id) once the sign-in is complete and our question
# (`idp.services.feedback`) is shown: the request waits until it is answered or skipped.
QUESTION = "question"


@lru_cache(maxsize=8)
def _binding_key(master: bytes) -> bytes:
    return derive_key(master, "idp interaction browser binding")


def _binding_value(interaction_id: str, settings: Settings) -> str:
    key = _binding_key(master_key(settings))
    return hmac.new(key, interaction_id.encode(), hashlib.sha256).hexdigest()


def binding_cookie_name(interaction_id: str, settings: Settings) -> str:
    """One cookie per pending interaction, so that two tabs do not disturb each other."""
    prefix = "__Host-" if settings.issuer.startswith("https://") else ""
    return f"{prefix}idp_ix_{interaction_id[:16]}"


def start(
    db: Session,
    *,
    client_id: str,
    params: dict[str, str],
    force_login: bool,
    required_acr: str | None,
    login_hint: str | None,
    ui_locales: str | None,
    settings: Settings,
) -> Interaction:
    """Store a validated authorization request for the sign-in pages."""
    interaction_id = random_token(24)[:ID_LENGTH]
    now = datetime.now(UTC)
    interaction = Interaction(
        id=interaction_id,
        client_id=client_id,
        params=dict(params),
        force_login=force_login,
        required_acr=required_acr,
        login_hint=(login_hint or None) and login_hint[:320],
        ui_locales=(ui_locales or None) and ui_locales[:64],
        amr=[],
        browser_hash=hash_secret(_binding_value(interaction_id, settings)),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.interaction_lifetime),
    )
    db.add(interaction)
    db.flush()
    return interaction


def bind_browser(
    response: Response, interaction: Interaction, settings: Settings, max_age: int | None = None
) -> None:
    """Give this browser the cookie that `load()` checks (for `max_age` seconds, by default the
    interaction's lifetime)."""
    response.set_cookie(
        binding_cookie_name(interaction.id, settings),
        _binding_value(interaction.id, settings),
        max_age=max_age or settings.interaction_lifetime,
        path="/",
        secure=settings.issuer.startswith("https://"),
        httponly=True,
        samesite="lax",
    )


def login_url(interaction: Interaction | str) -> str:
    interaction_id = interaction if isinstance(interaction, str) else interaction.id
    return f"/login/{interaction_id}"


def resume_url(interaction: Interaction | str) -> str:
    interaction_id = interaction if isinstance(interaction, str) else interaction.id
    if not isinstance(interaction, str) and interaction.client_id in INTERNAL_PREFIXES:
        return f"{INTERNAL_PREFIXES[interaction.client_id]}/resume/{interaction_id}"
    return f"/authorize/resume/{interaction_id}"


def cancel_url(interaction: Interaction | str) -> str:
    interaction_id = interaction if isinstance(interaction, str) else interaction.id
    if not isinstance(interaction, str) and interaction.client_id in INTERNAL_PREFIXES:
        return f"{INTERNAL_PREFIXES[interaction.client_id]}/cancel/{interaction_id}"
    return f"/authorize/cancel/{interaction_id}"


def redirect_to_login(interaction: Interaction, settings: Settings) -> Response:
    """303 to the sign-in pages, binding the interaction to this browser."""
    response = RedirectResponse(
        login_url(interaction), status_code=303, headers={"Cache-Control": "no-store"}
    )
    bind_browser(response, interaction, settings)
    return response


def load(
    db: Session, interaction_id: str, request: Request, *, used: bool = False
) -> Interaction | None:
    """The interaction if it is live, not yet completed (or, with `used`, even if it is), and
    bound to this browser."""
    if not interaction_id or len(interaction_id) > 64:
        return None
    interaction = db.get(Interaction, interaction_id)
    if interaction is None or (interaction.completed_at is not None and not used):
        return None
    if datetime.now(UTC) >= interaction.expires_at:
        return None
    settings: Settings = request.app.state.runtime.settings
    presented = request.cookies.get(binding_cookie_name(interaction.id, settings), "")
    if not hmac.compare_digest(hash_secret(presented), interaction.browser_hash or ""):
        return None
    return interaction


def complete(db: Session, interaction: Interaction) -> bool:
    """Use the interaction up. True for the one caller that did; False if it was already used."""
    now = datetime.now(UTC)
    result = db.execute(
        update(Interaction)
        .where(Interaction.id == interaction.id, Interaction.completed_at.is_(None))
        .values(completed_at=now)
        .execution_options(synchronize_session=False)
    )
    done = int(getattr(result, "rowcount", 0) or 0) == 1
    if done:
        interaction.completed_at = now
    return done


def record_progress(db: Session, interaction: Interaction, *, user_id: int, amr: list[str]) -> None:
    """Remember who is signing in and which factors they have passed so far."""
    interaction.user_id = user_id
    interaction.amr = list(amr)
    db.flush()


def restart_for(db: Session, user_id: int) -> int:
    """Send every unfinished sign-in of a citizen back to its first step: what it proved so far
    no longer counts (the password or second factor changed). Returns how many."""
    done = db.execute(
        update(Interaction)
        .where(
            Interaction.user_id == user_id,
            Interaction.completed_at.is_(None),
            Interaction.expires_at > datetime.now(UTC),
        )
        .values(user_id=None, amr=[])
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(done, "rowcount", 0) or 0)


def describe(interaction: Interaction) -> dict[str, Any]:
    """What a log line may say about an interaction (no request parameters)."""
    return {"interaction": interaction.id, "client_id": interaction.client_id}
