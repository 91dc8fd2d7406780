""" "This wasn't me": a citizen reports a use of their identity they do not recognise.

In one transaction: every session ends and every token grant is revoked, with a back-channel
logout queued for each e-service involved, as whenever an account is recovered
(`idp.logout.ending.end_everything`); the password must be changed at the next sign-in; and a
report is filed for the administrators.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp import events
from idp.db.models import Event, SecurityReport, TokenGrant, User
from idp.logout.ending import end_everything

REASON = "reported_not_me"


def live_grants(db: Session, user_id: int) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(TokenGrant)
            .where(
                TokenGrant.user_id == user_id,
                TokenGrant.revoked_at.is_(None),
                TokenGrant.expires_at > datetime.now(UTC),
            )
        )
        or 0
    )


def report_not_me(db: Session, user: User, event: Event, *, ip: str | None) -> SecurityReport:
    grants = live_grants(db, user.id)
    ended = end_everything(db, user.id, REASON)
    user.must_change_password = True
    report = SecurityReport(
        user_id=user.id,
        event_id=event.id,
        event_type=event.type,
        client_id=event.client_id,
        event_at=event.at,
        sessions_ended=ended,
        grants_revoked=grants,
        ip=ip,
        created_at=datetime.now(UTC),
    )
    db.add(report)
    db.flush()
    events.record(
        db,
        "account.reported_not_me",
        outcome="success",
        user_id=user.id,
        client_id=event.client_id,
        ip=ip,
        report=report.id,
        entry=event.id,
        sessions_ended=ended,
        grants_revoked=grants,
    )
    return report


def open_reports(db: Session, *, limit: int = 100) -> list[tuple[SecurityReport, str]]:
    """The latest reports with the citizen's username, newest first."""
    query = (
        select(SecurityReport, User.username)
        .join(User, User.id == SecurityReport.user_id)
        .order_by(SecurityReport.created_at.desc(), SecurityReport.id.desc())
        .limit(limit)
    )
    return [(report, username) for report, username in db.execute(query)]
