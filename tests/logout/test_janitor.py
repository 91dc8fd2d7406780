"""`idp janitor`: expired codes, tokens, sign-in requests and assertion ids go; what can still
be used stays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from idp import janitor
from idp.cli import main
from idp.config import Settings
from idp.db.models import (
    AccessToken,
    AuthorizationCode,
    Event,
    Interaction,
    RefreshToken,
    StatsCount,
    TokenGrant,
    UsedJti,
    User,
)
from idp.runtime import Runtime
from tests.logout.conftest import eservice, sign_in_to
from tests.protocol.conftest import Flow, authorize, sign_in

KINDS = (AuthorizationCode, AccessToken, RefreshToken, TokenGrant, Interaction, UsedJti)


def counts(runtime: Runtime) -> dict[str, int]:
    with runtime.db.transaction() as db:
        return {
            kind.__tablename__: int(db.scalar(select(func.count()).select_from(kind)) or 0)
            for kind in KINDS
        }


def test_expired_rows_are_deleted_and_live_ones_kept(
    client: TestClient,
    runtime: Runtime,
    citizen: User,
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tax = eservice(runtime, "tax")
    sign_in_to(client, runtime, citizen, tax)
    client.cookies.clear()
    assert authorize(client, Flow.new(tax)).status_code == 303  # a pending sign-in request
    now = datetime.now(UTC)
    with runtime.db.transaction() as db:
        db.add(UsedJti(client_id=tax.client_id, jti="j1", expires_at=now + timedelta(minutes=5)))
    before = counts(runtime)
    assert all(before.values()), before

    assert main(["janitor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["deleted"].values()) == {0}
    assert counts(runtime) == before

    with runtime.db.transaction() as db:  # two days on, everything has expired
        deleted = janitor.sweep(db, runtime.settings, now=now + timedelta(days=2))
    assert deleted["authorization_codes"] == 1
    assert deleted["access_tokens"] == 1 and deleted["refresh_tokens"] == 1
    assert deleted["token_grants"] == 1
    assert deleted["interactions"] == 1 and deleted["used_jtis"] == 1
    assert set(counts(runtime).values()) == {0}


def day_counts(runtime: Runtime, client_id: str) -> dict[tuple[str, str], int]:
    """The indicators' raw counts of today for an e-service."""
    with runtime.db.transaction() as db:
        rows = db.scalars(
            select(StatsCount).where(
                StatsCount.period == "d",
                StatsCount.client_id == client_id,
                StatsCount.start == datetime.now(UTC).date(),
            )
        )
        return {(row.metric, row.dim): row.value for row in rows}


def test_sign_in_requests_are_counted_without_audit_entries_then_deleted(
    client: TestClient,
    runtime: Runtime,
    citizen: User,
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Anyone can make `/authorize` store a request: it leaves no permanent audit entry, and the
    indicators still count every sign-in started and abandoned exactly once."""
    tax = eservice(runtime, "tax")
    before = counts_of_events(runtime)
    for _ in range(3):  # anonymous requests, never followed up
        assert "/login/" in authorize(client, Flow.new(tax)).headers["location"]
    assert counts_of_events(runtime) == before

    waiting = authorize(client, Flow.new(tax))  # one the citizen signs in for
    interaction_id = waiting.headers["location"].rsplit("/", 1)[1]
    sign_in(client, runtime, citizen)
    done = client.get(f"/authorize/resume/{interaction_id}", follow_redirects=False)
    assert "code=" in done.headers["location"]
    answered = authorize(client, Flow.new(tax))  # and one the session answers at once
    assert "code=" in answered.headers["location"]

    with runtime.db.transaction() as db:  # the requests' time runs out
        for pending in db.scalars(select(Interaction)):
            pending.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert main(["janitor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["deleted"]["interactions"] == 4
    expected = {
        ("started", ""): 5,
        ("completed", ""): 2,
        ("abandoned", "password"): 3,
    }
    found = day_counts(runtime, tax.client_id)
    assert {key: found.get(key) for key in expected} == expected
    assert main(["janitor", "--json"]) == 0  # nothing is counted twice
    assert day_counts(runtime, tax.client_id) == found
    with runtime.db.transaction() as db:
        types = [e.type for e in db.scalars(select(Event).where(Event.type.like("signin.%")))]
    assert sorted(types) == ["signin.completed", "signin.completed", "signin.started"]


def counts_of_events(runtime: Runtime) -> int:
    with runtime.db.transaction() as db:
        return int(db.scalar(select(func.count()).select_from(Event)) or 0)
