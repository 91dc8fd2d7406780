"""Citizens' ratings: when the question after a sign-in is asked, what its answer keeps, and
the e-services' rating API (client credentials, the `ratings` scope, checked payloads)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from idp import events
from idp.cli import main
from idp.config import Settings
from idp.db.models import Client, Event, FeedbackPrompt, FeedbackRating, User
from idp.janitor import sweep
from idp.oauth.claims import subject_for
from idp.runtime import Runtime
from idp.services import InvalidInput, feedback
from idp.services import clients as client_service
from tests.admin.api_helpers import ApiClient, token
from tests.signin.helpers import add_citizen, add_client

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
AT = "transaction_at"
WINDOW = timedelta(days=30)


def rule(**changes: Any) -> bool:
    facts: dict[str, Any] = {
        "eservice": True,
        "completed": True,
        "interactive": True,
        "sampling_rate": 0.25,
        "last_asked": None,
        "now": NOW,
        "window": WINDOW,
        "draw": 0.1,
    }
    facts.update(changes)
    return feedback.should_ask(**facts)


def test_the_question_is_asked_by_the_sampling_rate_once_per_window_after_success_only() -> None:
    assert rule()
    assert not rule(draw=0.25)  # the draw falls outside the sample
    assert not rule(sampling_rate=0.0, draw=0.0)
    assert rule(sampling_rate=1.0, draw=0.999)
    assert not rule(completed=False)  # a failed, refused or cancelled sign-in
    assert not rule(interactive=False)  # prompt=none: no page may be shown
    assert not rule(eservice=False)  # the account or admin pages
    assert not rule(last_asked=NOW - WINDOW + timedelta(seconds=1))
    assert rule(last_asked=NOW - WINDOW)


def _sampled(runtime: Runtime, client_id: str = "tax", rate: float = 0.5) -> None:
    with runtime.db.transaction() as db:
        client_service.set_indicator_settings(
            db, client_id, feedback_sampling_rate=rate, actor="test"
        )


def test_a_question_asked_is_answered_once_and_keeps_no_citizen(runtime: Runtime) -> None:
    citizen = add_citizen(runtime)
    add_client(runtime)
    _sampled(runtime)

    def offer(when: datetime, draw: float = 0.2, **facts: Any) -> bool:
        with runtime.db.transaction() as db:
            return feedback.offer(
                db, runtime, client_id="tax", user_id=citizen.id, now=when, draw=draw, **facts
            )

    assert not offer(NOW, draw=0.7)  # outside the sample
    assert not offer(NOW, completed=False)
    with pytest.raises(InvalidInput, match="no open question"), runtime.db.transaction() as db:
        feedback.answer(db, runtime, client_id="tax", user_id=citizen.id, score=4, now=NOW)
    assert offer(NOW)
    assert not offer(NOW + timedelta(days=29))  # asked within the window
    with pytest.raises(InvalidInput, match="1 to 5"), runtime.db.transaction() as db:
        feedback.answer(db, runtime, client_id="tax", user_id=citizen.id, score=6, now=NOW)
    with runtime.db.transaction() as db:
        feedback.answer(
            db,
            runtime,
            client_id="tax",
            user_id=citizen.id,
            score=4,
            comment="  Quick, but the code page was confusing.  ",
            now=NOW + timedelta(minutes=2),
        )
    with pytest.raises(InvalidInput, match="no open question"), runtime.db.transaction() as db:
        feedback.answer(db, runtime, client_id="tax", user_id=citizen.id, score=1, now=NOW)
    assert offer(NOW + WINDOW)  # the window has passed: asked again
    with runtime.db.transaction() as db:
        feedback.skip(db, runtime, client_id="tax", user_id=citizen.id, now=NOW + WINDOW)
    with runtime.db.read() as db:
        (rating,) = db.scalars(select(FeedbackRating))
        prompt = db.scalar(select(FeedbackPrompt))
        types = [e.type for e in db.scalars(select(Event).where(Event.type.like("feedback.%")))]
        feedback_events = list(db.scalars(select(Event).where(Event.type.like("feedback.%"))))
    assert (rating.source, rating.score, rating.client_id) == ("signin", 4, "tax")
    assert rating.comment == "Quick, but the code page was confusing."
    assert rating.comment_expires_at == NOW + timedelta(minutes=2, days=90)
    assert rating.occurred_at == NOW  # the sign-in's day
    assert prompt is not None and prompt.answered_at == NOW + WINDOW
    # Neither the rating, the question nor the events name the citizen.
    assert len(prompt.citizen_ref) == 64
    assert prompt.citizen_ref == feedback.citizen_reference(runtime.secrets, "tax", citizen.id)
    assert {e.user_id for e in feedback_events} == {None}
    assert types == [
        "feedback.asked",
        "feedback.rated",
        "feedback.asked",
        "feedback.skipped",
    ]


def test_the_janitor_erases_comments_after_retention_and_forgets_old_questions(
    runtime: Runtime,
) -> None:
    citizen = add_citizen(runtime)
    add_client(runtime)
    _sampled(runtime, rate=1.0)
    with runtime.db.transaction() as db:
        assert feedback.offer(db, runtime, client_id="tax", user_id=citizen.id, now=NOW)
        feedback.answer(
            db, runtime, client_id="tax", user_id=citizen.id, score=2, comment="Slow", now=NOW
        )
    with runtime.db.read() as db:
        listed, total = feedback.comments(db, feedback.CommentFilter(client_id="tax"), now=NOW)
    assert total == 1 and feedback.describe_comment(listed[0])["comment"] == "Slow"
    with runtime.db.transaction() as db:
        kept = sweep(db, runtime.settings, now=NOW + timedelta(days=29))
    assert kept["feedback_comments"] == kept["feedback_prompts"] == 0
    with runtime.db.transaction() as db:
        done = sweep(db, runtime.settings, now=NOW + timedelta(days=91))
    assert done["feedback_comments"] == 1 and done["feedback_prompts"] == 1
    with runtime.db.read() as db:
        (rating,) = db.scalars(select(FeedbackRating))
        assert rating.comment is None and rating.score == 2  # the score stays
        assert db.scalar(select(FeedbackPrompt)) is None
        assert feedback.comments(db, feedback.CommentFilter(), now=NOW)[1] == 0


# The e-services' rating API ----------------------------------------------------------------


def _rating_service(runtime: Runtime, *, scope: str = "openid ratings", pairwise: bool = False):  # type: ignore[no-untyped-def]
    with runtime.db.transaction() as db:
        registered = client_service.register_client(
            db,
            client_service.NewClient(
                name="Land registry",
                client_id="land",
                redirect_uris=["https://land.example.am/callback"],
                grant_types=["authorization_code", "client_credentials"],
                scope=scope,
                subject_type="pairwise" if pairwise else "public",
            ),
            actor="test",
        )
    assert registered.client_secret
    return ApiClient("land", registered.client_secret)


def _signed_in(runtime: Runtime, user_id: int, client_id: str = "land") -> str:
    """The citizen signs in to the e-service; returns the subject it knows them by."""
    with runtime.db.transaction() as db:
        events.record(db, "signin.completed", user_id=user_id, client_id=client_id, sso=False)
        user = db.get(User, user_id)
        client = db.scalar(select(Client).where(Client.client_id == client_id))
        assert user is not None and client is not None
        return subject_for(db, user, client)


def test_an_e_service_posts_a_rating_with_the_ratings_scope(
    client: TestClient, runtime: Runtime
) -> None:
    citizen = add_citizen(runtime)
    service = _rating_service(runtime, pairwise=True)
    sub = _signed_in(runtime, citizen.id)
    bearer = {"Authorization": f"Bearer {token(client, service, scope='ratings')}"}
    when = datetime.now(UTC) - timedelta(days=3)
    posted = client.post(
        "/ratings",
        json={
            "sub": sub,
            "score": 5,
            "comment": "Done in minutes",
            "transaction_at": when.isoformat(),
        },
        headers=bearer,
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["counted_on"] == when.date().isoformat()
    assert posted.headers["cache-control"] == "no-store"
    with runtime.db.read() as db:
        (rating,) = db.scalars(select(FeedbackRating))
    assert (rating.source, rating.client_id, rating.score) == ("eservice", "land", 5)
    assert rating.comment == "Done in minutes"
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["ratings_endpoint"] == "http://localhost:8000/ratings"
    assert "ratings" in discovery["scopes_supported"]


def test_the_rating_api_refuses_a_token_without_the_scope(
    client: TestClient, runtime: Runtime
) -> None:
    citizen = add_citizen(runtime)
    service = _rating_service(runtime, scope="openid profile ratings")
    sub = _signed_in(runtime, citizen.id)
    assert client.post("/ratings", json={"sub": sub, "score": 3}).status_code == 401
    bad = client.post(
        "/ratings", json={"sub": sub, "score": 3}, headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
    narrow = token(client, service, scope="profile")
    refused = client.post(
        "/ratings", json={"sub": sub, "score": 3}, headers={"Authorization": f"Bearer {narrow}"}
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="ratings", error="insufficient_scope"')
    assert 'scope="ratings"' in challenge
    with runtime.db.read() as db:
        assert db.scalar(select(FeedbackRating)) is None


def test_the_ratings_scope_needs_client_credentials(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput, match="client_credentials"), runtime.db.transaction() as db:
        client_service.register_client(
            db,
            client_service.NewClient(
                name="Web only",
                redirect_uris=["https://web.example.am/cb"],
                scope="openid ratings",
            ),
            actor="test",
        )


@pytest.mark.parametrize(
    ("body", "error", "names"),
    [
        ({"score": 4}, "invalid_request", "sub"),
        ({"sub": "S", "score": 6}, "invalid_request", "score"),
        ({"sub": "S", "score": 0}, "invalid_request", "score"),
        ({"sub": "S", "score": "4"}, "invalid_request", "score"),
        ({"sub": "S", "score": 4.0}, "invalid_request", "score"),
        ({"sub": "S", "score": True}, "invalid_request", "score"),
        ({"sub": "S", "score": 4, "stars": 5}, "invalid_request", "stars"),
        ({"sub": "S", "score": 4, "comment": "x" * 1001}, "invalid_request", "comment"),
        ({"sub": "S", "score": 4, "comment": "a\u0000b"}, "invalid_request", "comment"),
        (
            {"sub": "S", "score": 4, "transaction_at": "yesterday"},
            "invalid_request",
            "transaction_at",
        ),
        (
            {"sub": "S", "score": 4, "transaction_at": "2020-01-01T00:00:00Z"},
            "invalid_request",
            "transaction time",
        ),
        (
            {"sub": "S", "score": 4, "transaction_at": "2026-01-01T10:00:00"},
            "invalid_request",
            "time zone",
        ),
        ({"sub": "someone-else", "score": 4}, "unknown_subject", "signed in"),
        ([1, 2], "invalid_request", "JSON object"),
    ],
)
def test_the_rating_api_refuses_bad_payloads_clearly(
    client: TestClient, runtime: Runtime, body: Any, error: str, names: str
) -> None:
    citizen = add_citizen(runtime)
    service = _rating_service(runtime)
    sub = _signed_in(runtime, citizen.id)
    if isinstance(body, dict) and body.get("sub") == "S":
        body["sub"] = sub
    bearer = {"Authorization": f"Bearer {token(client, service, scope='ratings')}"}
    answer = client.post("/ratings", json=body, headers=bearer)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == error
    assert names in answer.json()["error_description"]
    with runtime.db.read() as db:
        assert db.scalar(select(FeedbackRating)) is None


def test_the_rating_api_refuses_what_is_not_json(client: TestClient, runtime: Runtime) -> None:
    service = _rating_service(runtime)
    bearer = {"Authorization": f"Bearer {token(client, service, scope='ratings')}"}
    form = client.post("/ratings", data={"sub": "x", "score": "4"}, headers=bearer)
    assert form.status_code == 415
    broken = client.post(
        "/ratings",
        content=b'{"sub": ',
        headers={**bearer, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error_description"]
    # A citizen known to the provider but who never signed in to this e-service.
    other = add_citizen(runtime, "aram", email="aram@example.am")
    add_client(runtime)
    public_sub = _signed_in(runtime, other.id, "tax")
    stranger = client.post("/ratings", json={"sub": public_sub, "score": 4}, headers=bearer)
    assert stranger.status_code == 400 and stranger.json()["error"] == "unknown_subject"


def test_administrators_read_the_comments_from_the_command_line(
    cli_env: Settings, runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    citizen = add_citizen(runtime)
    add_client(runtime)
    _sampled(runtime, rate=1.0)
    now = datetime.now(UTC)
    with runtime.db.transaction() as db:
        assert feedback.offer(db, runtime, client_id="tax", user_id=citizen.id, now=now)
        feedback.answer(
            db, runtime, client_id="tax", user_id=citizen.id, score=3, comment="Slow code", now=now
        )
    assert main(["stats", "comments", "--client-id", "tax", "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["client_id"], shown["source"], shown["score"]) == ("tax", "signin", 3)
    assert shown["comment"] == "Slow code"
    assert main(["stats", "comments", "--client-id", "health", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
