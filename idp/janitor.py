"""Housekeeping (`idp janitor`): delete what has expired and can no longer matter.

- authorization codes a day after they expired (until then a replayed code is still recognised
  and revokes what it produced);
- access and refresh tokens once expired, and their grants once nothing issued in them can be
  valid any more;
- pending sign-in requests (interactions) once expired (`idp janitor` first counts them into the
  indicators, up to the same instant: they are the only record of an anonymous request), and
  accepted client-assertion `jti`s once expired;
- back-channel logouts delivered or given up more than a week ago;
- the comments of ratings, once `feedback_comment_retention_days` have passed (the score
  stays), and the record that a citizen was asked about an e-service once
  `feedback_prompt_window_days` have passed.

Run it from cron (every few minutes is fine): it also delivers due back-channel logouts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from idp.config import Settings
from idp.db.models import (
    AccessToken,
    AuthorizationCode,
    FeedbackPrompt,
    FeedbackRating,
    Interaction,
    LogoutDelivery,
    RefreshToken,
    TokenGrant,
    UsedJti,
)

CODE_GRACE = timedelta(days=1)
LOGOUT_HISTORY = timedelta(days=7)


def _deleted(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def sweep(db: Session, settings: Settings, *, now: datetime | None = None) -> dict[str, int]:
    """Delete expired rows (erase expired comments); returns how many of each kind."""
    now = now or datetime.now(UTC)
    token_cutoff = now - timedelta(seconds=settings.access_token_lifetime)
    statements = {
        "authorization_codes": delete(AuthorizationCode).where(
            AuthorizationCode.expires_at < now - CODE_GRACE
        ),
        "access_tokens": delete(AccessToken).where(AccessToken.expires_at < now),
        "refresh_tokens": delete(RefreshToken).where(RefreshToken.expires_at < now),
        "token_grants": delete(TokenGrant).where(TokenGrant.expires_at < token_cutoff),
        "interactions": delete(Interaction).where(Interaction.expires_at < now),
        "used_jtis": delete(UsedJti).where(UsedJti.expires_at < now),
        "logout_deliveries": delete(LogoutDelivery).where(
            LogoutDelivery.next_attempt_at.is_(None),
            LogoutDelivery.created_at < now - LOGOUT_HISTORY,
        ),
        "feedback_comments": update(FeedbackRating)
        .where(FeedbackRating.comment_expires_at < now)
        .values(comment=None, comment_expires_at=None),
        "feedback_prompts": delete(FeedbackPrompt).where(
            FeedbackPrompt.asked_at < now - timedelta(days=settings.feedback_prompt_window_days)
        ),
    }
    return {
        name: _deleted(db.execute(statement.execution_options(synchronize_session=False)))
        for name, statement in statements.items()
    }
