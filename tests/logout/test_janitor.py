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
    TokenGrant,
    UsedJti,
    User,
)
from idp.runtime import Runtime
from tests.logout.conftest import eservice, sign_in_to
from tests.protocol.conftest import Flow, authorize

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


def test_an_abandoned_sign_in_is_counted_before_its_request_is_deleted(
    client: TestClient,
    runtime: Runtime,
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tax = eservice(runtime, "tax")
    assert authorize(client, Flow.new(tax)).status_code == 303  # the citizen never signs in
    with runtime.db.transaction() as db:
        pending = db.scalars(select(Interaction)).one()
        pending.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    assert main(["janitor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indicators_counted"] >= 1
    assert report["deleted"]["interactions"] == 1
    with runtime.db.transaction() as db:
        abandoned = db.scalars(select(Event).where(Event.type == "signin.abandoned")).one()
    assert abandoned.client_id == tax.client_id
    assert abandoned.data["step"] == "password"
