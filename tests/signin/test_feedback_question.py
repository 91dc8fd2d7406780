"""Our question after a completed sign-in, over HTTP: who is asked, what an answer or a skip
keeps, and that the citizen always goes back to the e-service with a code that works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from idp.db.models import Event, FeedbackPrompt, FeedbackRating, Interaction, User
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import feedback
from idp.stats import indicators, rollup
from tests.protocol.conftest import (
    EService,
    Flow,
    authorize,
    make_citizen,
    redeem,
    redirect_params,
    register,
    sign_in,
)
from tests.signin.helpers import Browser, add_citizen, forms


def _rate(runtime: Runtime, service: EService, rate: float) -> None:
    with runtime.db.transaction() as db:
        client_service.set_indicator_settings(
            db, service.client_id, feedback_sampling_rate=rate, actor="test"
        )


@pytest.fixture
def service(runtime: Runtime) -> EService:
    registered = register(runtime, name="Land registry", first_party=True)
    _rate(runtime, registered, 1.0)
    return registered


@pytest.fixture
def citizen(client: TestClient, runtime: Runtime) -> User:
    user = make_citizen(runtime)
    sign_in(client, runtime, user)
    return user


def _count(runtime: Runtime, model: Any, *where: Any) -> int:
    with runtime.db.read() as db:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _events(runtime: Runtime, type: str) -> int:
    return _count(runtime, Event, Event.type == type)


def asked(client: TestClient, flow: Flow) -> httpx.Response:
    """`/authorize`, which sends the browser to our question; the question page."""
    started = authorize(client, flow)
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    assert location.startswith("/feedback/"), location
    page = client.get(location)
    assert page.status_code == 200, page.text
    return page


def send(client: TestClient, page: httpx.Response, **data: str) -> httpx.Response:
    (form,) = [f for f in forms(page.text) if f.method == "post"]
    fields = {name: value for name, value in form.fields.items() if name == "csrf_token"}
    return client.post(form.action, data={**fields, **data}, follow_redirects=False)


def returned(client: TestClient, flow: Flow, response: httpx.Response) -> dict[str, Any]:
    """The browser is back at the e-service with a code that redeems at `/token`."""
    assert response.status_code in (302, 303), response.text
    assert response.headers["location"].startswith(flow.service.redirect_uri)
    params = redirect_params(response)
    assert params["state"] == flow.params["state"]
    assert params["iss"] == "http://localhost:8000"
    tokens = redeem(client, flow, params["code"])
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    assert body["id_token"] and body["access_token"]
    return body


def test_asked_by_the_sampling_rate_and_the_code_waits_for_the_question(
    client: TestClient, runtime: Runtime, service: EService, citizen: User
) -> None:
    _rate(runtime, service, 0.0)
    flow = Flow.new(service)
    assert "code" in redirect_params(authorize(client, flow))  # never asked at rate 0
    assert _events(runtime, "feedback.asked") == 0
    _rate(runtime, service, 1.0)
    flow = Flow.new(service, ui_locales="en")
    page = asked(client, flow)
    assert "How easy was it to sign in to Land registry?" in page.text
    for label in ("Very difficult", "Neither easy nor difficult", "Very easy", "Send", "Skip"):
        assert label in page.text
    assert "You can enter up to 1000 characters" in page.text
    assert "code=" not in page.text and flow.params["state"] not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert _events(runtime, "feedback.asked") == 1
    assert _events(runtime, "signin.completed") == 2  # the sign-in is complete, and counted
    # The form needs its CSRF token.
    (form,) = [f for f in forms(page.text) if f.method == "post"]
    refused = client.post(form.action, data={"choice": "skip"}, follow_redirects=False)
    assert refused.status_code == 403


def test_skip_returns_to_the_eservice_with_a_valid_code(
    client: TestClient, runtime: Runtime, service: EService, citizen: User
) -> None:
    flow = Flow.new(service)
    page = asked(client, flow)
    tokens = returned(client, flow, send(client, page, choice="skip"))
    assert tokens["token_type"] == "Bearer"
    assert _events(runtime, "feedback.skipped") == 1
    assert _count(runtime, FeedbackRating) == 0
    assert _count(runtime, FeedbackPrompt, FeedbackPrompt.answered_at.is_not(None)) == 1


def test_an_answer_is_kept_and_the_citizen_returns_signed_in(
    client: TestClient, runtime: Runtime, service: EService, citizen: User
) -> None:
    flow = Flow.new(service)
    page = asked(client, flow)
    response = send(client, page, choice="send", score="4", comment=" Clear pages. ")
    returned(client, flow, response)
    with runtime.db.read() as db:
        (rating,) = db.scalars(select(FeedbackRating))
    assert (rating.client_id, rating.source, rating.score) == (service.client_id, "signin", 4)
    assert rating.comment == "Clear pages."
    # Asked at most once in the window: the next sign-in goes straight back.
    again = Flow.new(service)
    returned(client, again, authorize(client, again))
    assert _events(runtime, "feedback.asked") == 1


def test_an_answer_that_cannot_be_read_shows_the_page_again_and_keeps_nothing(
    client: TestClient, runtime: Runtime, service: EService, citizen: User
) -> None:
    flow = Flow.new(service, ui_locales="en")
    page = asked(client, flow)
    for data in ({"score": "9"}, {"score": ""}, {"score": "4", "comment": "x" * 1001}):
        shown = send(client, page, **{"choice": "send", "comment": "Kept on the page", **data})
        assert shown.status_code == 400
        assert "There is a problem" in shown.text
        assert 'href="#score"' in shown.text or 'href="#comment"' in shown.text
        assert "code=" not in shown.text
    assert "Your comment must be 1000 characters or fewer" in shown.text
    assert "x" * 1001 in shown.text  # what the citizen wrote is not lost
    assert _count(runtime, FeedbackRating) == 0
    assert _events(runtime, "feedback.rated") == 0
    returned(client, flow, send(client, shown, choice="send", score="2"))
    assert _count(runtime, FeedbackRating, FeedbackRating.score == 2) == 1


def test_a_question_answered_elsewhere_or_a_form_sent_twice_still_returns(
    client: TestClient, runtime: Runtime, service: EService, citizen: User
) -> None:
    flow = Flow.new(service)
    page = asked(client, flow)
    with runtime.db.transaction() as db:  # answered meanwhile (another tab)
        feedback.answer(db, runtime, client_id=service.client_id, user_id=citizen.id, score=5)
    returned(client, flow, send(client, page, choice="send", score="1"))
    # The same form sent again (a second tap, the back button): back to the e-service again.
    returned(client, flow, send(client, page, choice="skip"))
    with runtime.db.read() as db:
        assert list(db.scalars(select(FeedbackRating.score))) == [5]
    # Another browser cannot use the question's address.
    stranger = TestClient(client.app, base_url="http://localhost:8000")
    assert stranger.get(str(page.url)).status_code == 400


def test_never_asked_after_a_refused_or_cancelled_sign_in_nor_with_prompt_none(
    client: TestClient, runtime: Runtime, citizen: User
) -> None:
    asking = register(runtime, name="Notary")  # not first-party: asks for consent
    _rate(runtime, asking, 1.0)
    flow = Flow.new(asking)
    to_consent = authorize(client, flow)
    page = client.get(to_consent.headers["location"])
    (form,) = [f for f in forms(page.text) if f.method == "post"]
    denied = client.post(
        form.action, data={**form.fields, "decision": "deny"}, follow_redirects=False
    )
    assert redirect_params(denied)["error"] == "access_denied"
    cancelled = authorize(client, Flow.new(asking))
    interaction_id = cancelled.headers["location"].rsplit("/", 1)[1]
    gone = client.get(f"/authorize/cancel/{interaction_id}", follow_redirects=False)
    assert redirect_params(gone)["error"] == "access_denied"
    silent = Flow.new(asking, prompt="none")
    assert redirect_params(authorize(client, silent))["error"] == "consent_required"
    assert _events(runtime, "feedback.asked") == 0
    # Consent given, but prompt=none allows no page: the code comes back at once.
    first_party = register(runtime, name="Land registry", first_party=True)
    _rate(runtime, first_party, 1.0)
    silent = Flow.new(first_party, prompt="none")
    returned(client, silent, authorize(client, silent))
    assert _events(runtime, "feedback.asked") == 0


def test_failed_sign_in_is_never_asked_and_a_completed_one_through_the_pages_is(
    client: TestClient, runtime: Runtime, service: EService
) -> None:
    citizen = add_citizen(runtime, "narek")
    browser = Browser(client, runtime)
    flow = Flow.new(service)
    started = authorize(client, flow)
    login = browser.page(started.headers["location"])
    wrong = browser.submit(login, {"username": "narek", "password": "not the password"})
    assert wrong.headers["location"].startswith("/login/")
    assert _events(runtime, "feedback.asked") == 0
    after_password = browser.submit(login, {"username": "narek", "password": citizen.password})
    code_page = browser.follow(after_password)
    done = browser.submit(code_page, {"code": citizen.code()})
    question = client.get(done.headers["location"], follow_redirects=False)
    assert question.headers["location"].startswith("/feedback/")
    page = client.get(question.headers["location"])
    returned(client, flow, send(client, page, choice="send", score="5"))
    with runtime.db.read() as db:
        completed = db.scalar(select(Event).where(Event.type == "signin.completed"))
    assert completed is not None and completed.data["seconds"] is not None


def test_a_question_left_unanswered_counts_the_sign_in_completed_not_abandoned(
    client: TestClient, runtime: Runtime, service: EService, citizen: User
) -> None:
    asked(client, Flow.new(service))  # the session answered at once, then the question
    # The citizen closes the tab; the request held for the question runs out.
    with runtime.db.transaction() as db:
        db.execute(update(Interaction).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    rollup.run(runtime)
    today = datetime.now(UTC).date()
    with runtime.db.read() as db:
        found = indicators.report(
            db, since=today, until=today, client_id=service.client_id, min_cell=1
        )
    (day,) = found.rows
    assert (day.values["started"], day.values["completed"]) == (1, 1)
    assert not day.values["abandoned"]
