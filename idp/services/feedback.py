"""Citizens' ratings of the e-services: our question after a sign-in, and the e-services' own.

After a completed sign-in the provider may ask the citizen one question before the browser
returns to the e-service ("How easy was it to sign in to <e-service>?", 1 to 5, an optional
comment, or skip). `offer` decides, by the pure rule `should_ask` (the e-service's sampling
rate; at most once per citizen and e-service within `feedback_prompt_window_days`, answered or
not; never after a failed or refused sign-in, never when the e-service asked for no page),
and remembers that it asked; `answer` or `skip` then closes that question, once. E-services
post their own rating after a transaction (`rate_by_eservice`, the `/ratings` API).

What is kept names no citizen: a rating is an e-service, a score, the day it is about and
perhaps a comment (erased by `idp janitor` after `feedback_comment_retention_days`). The
question asked is remembered under a keyed hash of the citizen and the e-service
(`citizen_reference`), only until its window has passed. Each step records an event without a
citizen (`feedback.asked`, `feedback.rated`, `feedback.skipped`): the indicators count those.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp import events
from idp.db.inserts import upsert
from idp.db.models import Client, Event, FeedbackPrompt, FeedbackRating
from idp.db.types import utcnow
from idp.i18n import N_
from idp.oauth.claims import user_for_subject
from idp.runtime import Runtime
from idp.security import SecretBox
from idp.services.errors import InvalidInput, NotFound
from idp.stats.rules import is_eservice
from idp.text import storable

SIGNIN = "signin"  # our question after a sign-in
ESERVICE = "eservice"  # the e-service's own, after a transaction
SOURCES = (SIGNIN, ESERVICE)
SCORES = (1, 2, 3, 4, 5)
MAX_COMMENT = 1000
ANSWER_WITHIN = timedelta(hours=1)  # a question shown can be answered for this long
MAX_RATING_AGE = timedelta(days=31)  # an e-service rates transactions this recent at most
CLOCK_SKEW = timedelta(minutes=5)


class UnknownSubject(NotFound):
    code = "unknown_subject"


class NoOpenQuestion(InvalidInput):
    """The question was answered or skipped already, or asked too long ago."""


def citizen_reference(secrets: SecretBox, client_id: str, user_id: int) -> str:
    """The citizen, towards one e-service, as the question's record names them."""
    return secrets.pseudonym("feedback prompt", client_id, str(user_id))


def should_ask(
    *,
    eservice: bool,
    completed: bool,
    interactive: bool,
    sampling_rate: float,
    last_asked: datetime | None,
    now: datetime,
    window: timedelta,
    draw: float,
) -> bool:
    """Whether to ask the citizen now. `eservice`: the sign-in was for an e-service (not the
    account or admin pages); `completed`: it ended with a code for the e-service (not failed,
    refused or cancelled); `interactive`: the e-service allows a page (not `prompt=none`);
    `last_asked`: when this citizen was last asked about this e-service; `draw`: a number in
    [0, 1), drawn at random in service: the citizen is asked when it is below the rate."""
    if not (eservice and completed and interactive):
        return False
    if last_asked is not None and now - last_asked < window:
        return False
    return draw < sampling_rate


def offer(
    db: Session,
    runtime: Runtime,
    *,
    client_id: str,
    user_id: int,
    completed: bool = True,
    interactive: bool = True,
    now: datetime | None = None,
    draw: float | None = None,
) -> bool:
    """Whether to show the question after this sign-in; if so, it is remembered as asked (in
    the caller's transaction) and may be answered or skipped within `ANSWER_WITHIN`."""
    now = now or utcnow()
    rate = db.scalar(
        select(Client.feedback_sampling_rate).where(
            Client.client_id == client_id, Client.disabled_at.is_(None)
        )
    )
    if rate is None:
        return False
    reference = citizen_reference(runtime.secrets, client_id, user_id)
    last = db.scalar(
        select(FeedbackPrompt.asked_at).where(
            FeedbackPrompt.client_id == client_id, FeedbackPrompt.citizen_ref == reference
        )
    )
    ask = should_ask(
        eservice=is_eservice(client_id),
        completed=completed,
        interactive=interactive,
        sampling_rate=rate,
        last_asked=last,
        now=now,
        window=timedelta(days=runtime.settings.feedback_prompt_window_days),
        draw=random.random() if draw is None else draw,  # noqa: S311 - a sample, not a secret
    )
    if ask:
        statement = upsert(db, FeedbackPrompt).values(
            client_id=client_id, citizen_ref=reference, asked_at=now, answered_at=None
        )
        db.execute(
            statement.on_conflict_do_update(
                index_elements=["client_id", "citizen_ref"],
                set_={"asked_at": now, "answered_at": None},
            )
        )
        events.record(db, "feedback.asked", client_id=client_id)
    return ask


def _score(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in SCORES:
        raise InvalidInput(N_("the score must be a whole number from 1 to 5"))
    return value


def _comment(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > MAX_COMMENT:
        raise InvalidInput(
            N_("the comment must have at most %(count)s characters"), count=MAX_COMMENT
        )
    if not storable(text):
        raise InvalidInput(N_("the comment contains characters that cannot be kept"))
    return text


def _open_question(
    db: Session, runtime: Runtime, client_id: str, user_id: int, now: datetime
) -> FeedbackPrompt:
    reference = citizen_reference(runtime.secrets, client_id, user_id)
    prompt = db.get(FeedbackPrompt, (client_id, reference), with_for_update=True)
    if prompt is None or prompt.answered_at is not None or now - prompt.asked_at > ANSWER_WITHIN:
        raise NoOpenQuestion(N_("there is no open question about this e-service"))
    return prompt


def _record(
    db: Session,
    runtime: Runtime,
    *,
    source: str,
    client_id: str,
    score: int,
    comment: str | None,
    occurred_at: datetime,
    now: datetime,
) -> FeedbackRating:
    retention = timedelta(days=runtime.settings.feedback_comment_retention_days)
    rating = FeedbackRating(
        source=source,
        client_id=client_id,
        score=score,
        comment=comment,
        comment_expires_at=now + retention if comment else None,
        occurred_at=occurred_at,
        created_at=now,
    )
    db.add(rating)
    db.flush()
    events.record(
        db,
        "feedback.rated",
        client_id=client_id,
        source=source,
        score=score,
        on=occurred_at.date().isoformat(),
    )
    return rating


def answer(
    db: Session,
    runtime: Runtime,
    *,
    client_id: str,
    user_id: int,
    score: int,
    comment: str | None = None,
    now: datetime | None = None,
) -> FeedbackRating:
    """The citizen's answer to the question `offer` asked: counted on the day of the sign-in."""
    now = now or utcnow()
    checked, text = _score(score), _comment(comment)
    prompt = _open_question(db, runtime, client_id, user_id, now)
    prompt.answered_at = now
    return _record(
        db,
        runtime,
        source=SIGNIN,
        client_id=client_id,
        score=checked,
        comment=text,
        occurred_at=prompt.asked_at,
        now=now,
    )


def skip(
    db: Session, runtime: Runtime, *, client_id: str, user_id: int, now: datetime | None = None
) -> None:
    """The citizen chose not to answer: the question is closed, and not asked again within
    the window."""
    now = now or utcnow()
    _open_question(db, runtime, client_id, user_id, now).answered_at = now
    events.record(db, "feedback.skipped", client_id=client_id)


def _transaction_time(value: datetime | None, now: datetime) -> datetime:
    if value is None:
        return now
    if value.tzinfo is None or not now - MAX_RATING_AGE <= value <= now + CLOCK_SKEW:
        raise InvalidInput(
            N_(
                "the transaction time must have a time zone, lie within the last %(days)s days"
                " and not in the future"
            ),
            days=MAX_RATING_AGE.days,
        )
    return min(value, now)


def rate_by_eservice(
    db: Session,
    runtime: Runtime,
    *,
    client: Client,
    sub: str,
    score: int,
    comment: str | None = None,
    transaction_at: datetime | None = None,
    now: datetime | None = None,
) -> FeedbackRating:
    """A rating `client` gives for a transaction of the citizen it knows as `sub` (public or
    pairwise), who must have signed in to it; counted on the day of the transaction."""
    now = now or utcnow()
    checked, text = _score(score), _comment(comment)
    occurred = _transaction_time(transaction_at, now)
    user = user_for_subject(db, sub, client)
    signed_in = user is not None and (
        db.scalar(
            select(Event.id)
            .where(
                Event.user_id == user.id,
                Event.client_id == client.client_id,
                Event.type == "signin.completed",
            )
            .limit(1)
        )
        is not None
    )
    if not signed_in:
        raise UnknownSubject(N_("no citizen with this subject has signed in to this e-service"))
    return _record(
        db,
        runtime,
        source=ESERVICE,
        client_id=client.client_id,
        score=checked,
        comment=text,
        occurred_at=occurred,
        now=now,
    )


@dataclass(frozen=True)
class CommentFilter:
    client_id: str | None = None
    since: date | None = None  # created on or after this day (UTC)
    until: date | None = None  # created on or before this day


def comments(
    db: Session,
    chosen: CommentFilter,
    *,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> tuple[list[FeedbackRating], int]:
    """A page of the ratings with a comment still kept, newest first, and how many there are:
    for administrators only."""
    now = now or utcnow()
    query = select(FeedbackRating).where(
        FeedbackRating.comment.is_not(None), FeedbackRating.comment_expires_at > now
    )
    if chosen.client_id:
        query = query.where(FeedbackRating.client_id == chosen.client_id)
    if chosen.since:
        query = query.where(FeedbackRating.created_at >= _start(chosen.since))
    if chosen.until:
        query = query.where(FeedbackRating.created_at < _start(chosen.until + timedelta(days=1)))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = query.order_by(FeedbackRating.created_at.desc(), FeedbackRating.id.desc())
    return list(db.scalars(page.limit(max(1, limit)).offset(max(0, offset)))), int(total)


def _start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def describe_comment(rating: FeedbackRating) -> dict[str, Any]:
    return {
        "id": rating.id,
        "client_id": rating.client_id,
        "source": rating.source,
        "score": rating.score,
        "comment": rating.comment,
        "occurred_on": rating.occurred_at.date().isoformat(),
        "created_at": rating.created_at.isoformat(),
        "erased_after": rating.comment_expires_at.isoformat()
        if rating.comment_expires_at
        else None,
    }
