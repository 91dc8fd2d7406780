"""Back-channel logout: every e-service that shared the session gets a valid logout token over
real HTTP; one that is down hears about it when it is back (the outbox); several processes
never deliver the same row twice; disabling an account tells the e-services too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.app import create_app
from idp.cli import main
from idp.config import Settings
from idp.db import Database
from idp.db.models import Event, LogoutDelivery, User
from idp.logout import delivery, outbox
from idp.logout.token import BACKCHANNEL_EVENT
from idp.runtime import Runtime
from idp.services import users as user_service
from tests.conftest import make_settings
from tests.logout.conftest import Receiver, eservice, sign_in_to, verify_logout_token
from tests.protocol.conftest import make_citizen


def deliveries(runtime: Runtime) -> list[LogoutDelivery]:
    with runtime.db.transaction() as db:
        return list(db.scalars(select(LogoutDelivery).order_by(LogoutDelivery.id)))


def later(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def hint_logout(http: TestClient, id_token: str) -> None:
    response = http.get("/logout", params={"id_token_hint": id_token}, follow_redirects=False)
    assert response.status_code == 303


def test_every_eservice_of_the_session_gets_a_valid_logout_token(
    client: TestClient, runtime: Runtime, citizen: User, receivers: list[Receiver]
) -> None:
    tax, health, elsewhere = (Receiver().start() for _ in range(3))
    receivers.extend([tax, health, elsewhere])
    a = eservice(runtime, "tax", backchannel_logout_uri=tax.uri)
    b = eservice(
        runtime, "health", backchannel_logout_uri=health.uri, id_token_signed_response_alg="ES256"
    )
    c = eservice(runtime, "elsewhere", backchannel_logout_uri=elsewhere.uri)
    other = make_citizen(runtime, "aram")
    with TestClient(create_app(runtime=runtime), base_url=runtime.settings.issuer) as browser:
        sign_in_to(browser, runtime, other, c)  # another citizen's session, not ended
    signed = sign_in_to(client, runtime, citizen, a, b)
    hint_logout(client, signed.tokens[a.client_id]["id_token"])

    assert len(tax.tokens) == 1 and len(health.tokens) == 1
    assert elsewhere.tokens == []
    for receiver, service, alg in ((tax, a, "RS256"), (health, b, "ES256")):
        claims = verify_logout_token(client, receiver.tokens[0])
        assert claims["header"]["typ"] == "logout+jwt"
        assert claims["header"]["alg"] == alg
        assert claims["iss"] == runtime.settings.issuer
        assert claims["aud"] == service.client_id
        assert claims["sid"] == signed.sid
        assert claims["sub"] == citizen.sub
        assert claims["events"] == {BACKCHANNEL_EVENT: {}}
        assert "nonce" not in claims
        assert 0 < claims["exp"] - claims["iat"] <= 120
        assert len(claims["jti"]) >= 16
    assert (
        verify_logout_token(client, tax.tokens[0])["jti"]
        != verify_logout_token(client, health.tokens[0])["jti"]
    )
    rows = deliveries(runtime)
    assert [r.delivered_at is not None and r.next_attempt_at is None for r in rows] == [True, True]


def test_an_eservice_that_was_down_hears_about_the_logout_later(
    client: TestClient, runtime: Runtime, citizen: User, receivers: list[Receiver]
) -> None:
    down = Receiver()  # nothing listens on its port yet
    receivers.append(down)
    tax = eservice(runtime, "tax", backchannel_logout_uri=down.uri)
    signed = sign_in_to(client, runtime, citizen, tax)
    hint_logout(client, signed.tokens[tax.client_id]["id_token"])

    [row] = deliveries(runtime)
    assert row.delivered_at is None and row.attempts == 1
    assert row.next_attempt_at is not None and row.next_attempt_at > datetime.now(UTC)
    assert row.last_error and "not reached" in row.last_error
    # Not due yet: nothing is sent even though the e-service is back.
    down.start()
    assert delivery.deliver_due_now(runtime).delivered == 0
    assert down.tokens == []
    # Once the backoff has passed, the outbox delivers (a fresh token, still about the session).
    report = delivery.deliver_due_now(runtime, now=later(2))
    assert report.delivered == 1
    claims = verify_logout_token(client, down.tokens[0])
    assert claims["sid"] == signed.sid and claims["aud"] == tax.client_id
    [row] = deliveries(runtime)
    assert row.delivered_at is not None and row.next_attempt_at is None and row.attempts == 2
    # Delivered once only.
    assert delivery.deliver_due_now(runtime, now=later(120)).delivered == 0
    assert len(down.tokens) == 1


def test_the_janitor_retries_waiting_logouts_now(
    client: TestClient,
    runtime: Runtime,
    citizen: User,
    receivers: list[Receiver],
    cli_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDP_CLIENT_FETCH_PRIVATE_ADDRESSES", "true")
    down = Receiver()
    receivers.append(down)
    tax = eservice(runtime, "tax", backchannel_logout_uri=down.uri)
    signed = sign_in_to(client, runtime, citizen, tax)
    hint_logout(client, signed.tokens[tax.client_id]["id_token"])
    down.start()
    assert main(["janitor", "--json"]) == 0  # not due yet
    assert down.tokens == []
    assert main(["janitor", "--retry-now", "--json"]) == 0
    assert len(down.tokens) == 1
    assert verify_logout_token(client, down.tokens[0])["sid"] == signed.sid


def test_the_worker_of_a_running_provider_delivers_by_itself(
    tmp_path: Path,
    database_url: str,
    client: TestClient,
    runtime: Runtime,
    citizen: User,
    receiver: Receiver,
) -> None:
    tax = eservice(runtime, "tax", backchannel_logout_uri=receiver.uri)
    sign_in_to(client, runtime, citizen, tax)
    with runtime.db.transaction() as db:  # disabled from another process (the CLI)
        user_service.set_disabled(db, citizen.username, True, actor="test")
    assert receiver.tokens == []
    settings = make_settings(
        tmp_path,
        database_url,
        client_fetch_private_addresses=True,
        backchannel_logout_poll_interval=0.05,
    )
    provider = Runtime.build(settings)
    try:
        with TestClient(create_app(runtime=provider), base_url=settings.issuer):
            assert receiver.arrived.wait(timeout=20), "the worker did not deliver"
    finally:
        provider.db.dispose()
    claims = verify_logout_token(client, receiver.tokens[0])
    assert claims["sub"] == citizen.sub and "sid" not in claims


def test_disabling_an_account_tells_every_eservice(
    client: TestClient, runtime: Runtime, citizen: User, receivers: list[Receiver]
) -> None:
    tax, health = Receiver().start(), Receiver().start()
    receivers.extend([tax, health])
    a = eservice(runtime, "tax", backchannel_logout_uri=tax.uri)
    b = eservice(
        runtime, "health", backchannel_logout_uri=health.uri, scope="openid offline_access"
    )
    sign_in_to(client, runtime, citizen, a)
    sign_in_to(client, runtime, citizen, b)  # a second session
    with runtime.db.transaction() as db:
        user_service.set_disabled(db, citizen.username, True, actor="test")
    report = delivery.deliver_due_now(runtime)
    assert report.delivered == 2
    for receiver in (tax, health):
        [token] = receiver.tokens
        claims = verify_logout_token(client, token)
        assert claims["sub"] == citizen.sub and "sid" not in claims
    with runtime.db.transaction() as db:
        kinds = [e.type for e in db.scalars(select(Event).where(Event.type.like("logout.%")))]
    assert "logout.everywhere" in kinds


def test_only_one_process_claims_a_delivery(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    with runtime.db.transaction() as db:
        row = outbox.enqueue(
            db, client_id="x", user_id=None, sid="s", sub=None, reason="t", now=now
        )
        row_id = row.id
    other_process = Database.from_url(runtime.settings.effective_database_url)
    try:
        with runtime.db.transaction() as first, other_process.transaction() as second:
            assert outbox.claim(first, row_id, now, runtime.settings) is True
            first.commit()
            assert outbox.claim(second, row_id, now, runtime.settings) is False
    finally:
        other_process.dispose()


def test_a_refused_token_is_given_up_a_server_error_retried(
    client: TestClient, runtime: Runtime, citizen: User, receivers: list[Receiver]
) -> None:
    refusing, failing = Receiver(status=400).start(), Receiver(status=503).start()
    receivers.extend([refusing, failing])
    a = eservice(runtime, "tax", backchannel_logout_uri=refusing.uri)
    b = eservice(runtime, "health", backchannel_logout_uri=failing.uri)
    signed = sign_in_to(client, runtime, citizen, a, b)
    hint_logout(client, signed.tokens[a.client_id]["id_token"])
    by_client = {row.client_id: row for row in deliveries(runtime)}
    assert by_client[a.client_id].abandoned_at is not None
    assert by_client[a.client_id].next_attempt_at is None
    assert by_client[b.client_id].abandoned_at is None
    assert by_client[b.client_id].next_attempt_at is not None
    # Retried with growing waits, and given up after `backchannel_logout_retry_for`.
    assert outbox.backoff(1) < outbox.backoff(2) < outbox.backoff(3) <= outbox.backoff(50)
    delivery.deliver_due_now(runtime, now=later(24 * 60 + 1))
    assert deliveries(runtime)[1].abandoned_at is not None


@pytest.mark.parametrize(
    "uri",
    [
        None,  # the receiver, on this machine
        "https://[64:ff9b::7f00:1]/backchannel-logout",  # NAT64 of 127.0.0.1
        "https://[::a9fe:a9fe]/backchannel-logout",  # IPv4-compatible 169.254.169.254
        "https://[2002:a00:1::1]/backchannel-logout",  # 6to4 of 10.0.0.1
    ],
)
def test_private_addresses_are_not_called_unless_allowed(
    tmp_path: Path, database_url: str, citizen: User, receiver: Receiver, uri: str | None
) -> None:
    """Given up at once (an address embedding a private one too), not retried."""
    settings = make_settings(tmp_path, database_url, backchannel_logout_poll_interval=0)
    runtime = Runtime.build(settings)
    runtime.keyring.ensure_initial()
    try:
        tax = eservice(runtime, "tax", backchannel_logout_uri=uri or receiver.uri)
        with TestClient(create_app(runtime=runtime), base_url=settings.issuer) as http:
            signed = sign_in_to(http, runtime, citizen, tax)
            hint_logout(http, signed.tokens[tax.client_id]["id_token"])
        assert receiver.tokens == []
        [row] = deliveries(runtime)
        assert row.abandoned_at is not None, row.last_error
        assert row.next_attempt_at is None
        assert (row.last_error or "").startswith("refused: ")
    finally:
        runtime.db.dispose()
