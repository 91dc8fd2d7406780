"""A known history of events, rolled up, gives exactly the expected indicators."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from idp import events
from idp.db.models import Interaction, StatsCount
from idp.runtime import Runtime
from idp.stats import indicators, rollup
from tests.admin.conftest import Console
from tests.signin.helpers import Citizen

DAY = date(2026, 3, 2)  # a Monday


def at(day_offset: int, hour: int = 10) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=UTC) + timedelta(days=day_offset)


def record(runtime: Runtime, when: datetime, type: str, **values: Any) -> None:
    with runtime.db.transaction() as db:
        events.record(db, type, at=when, **values)


def completed(runtime: Runtime, when: datetime, user: int, client: str = "tax", **data: Any):  # type: ignore[no-untyped-def]
    values = {"acr": "substantial", "amr": ["mfa", "otp", "pwd"], "sso": False, "seconds": 20}
    values.update(data)
    record(runtime, when, "signin.started", client_id=client)
    record(runtime, when, "signin.completed", user_id=user, client_id=client, **values)


def history(runtime: Runtime) -> None:
    """Day 0: citizens 1-6 sign in to `tax` (times 10..60 s); citizen 1 twice more by SSO.
    Day 1: citizens 1-5 again (returning), 7 new; two wrong passwords (and one abandoned
    sign-in, whose request the test adds: a request counts as started by itself).
    Day 2: citizens 8 and 9 only (a period of two citizens: suppressed).
    `health`: three citizens on day 0 (suppressed throughout)."""
    for user in range(1, 7):
        completed(runtime, at(0), user, seconds=user * 10)
    completed(runtime, at(0, 11), 1, sso=True, seconds=None)
    completed(runtime, at(0, 12), 1, sso=True, seconds=None, acr="low", amr=["pwd"])
    for user in (1, 2, 3, 4, 5, 7):
        completed(runtime, at(1), user, seconds=30)
    for _ in range(2):
        record(runtime, at(1), "signin.started", client_id="tax")
        record(
            runtime,
            at(1),
            "auth.password",
            outcome="failure",
            client_id="tax",
            reason="credentials",
        )
    record(runtime, at(1), "consent.granted", user_id=7, client_id="tax")
    for user in (8, 9):
        completed(runtime, at(2), user)
    for user in (20, 21, 22):
        completed(runtime, at(0), user, client="health")
    for user in range(1, 7):
        record(runtime, at(0), "auth.account_locked", outcome="locked", user_id=user)
    record(runtime, at(0), "auth.password_reset", user_id=1)


def test_indicators_of_a_known_history(runtime: Runtime) -> None:
    history(runtime)
    with runtime.db.transaction() as db:
        db.add(
            Interaction(
                id="abandoned-1",
                client_id="tax",
                params={},
                amr=[],
                user_id=None,
                created_at=at(1),
                expires_at=at(1, 11),
            )
        )
    assert rollup.run(runtime, batch=7, now=at(1, 12)) > 0
    assert rollup.run(runtime) == 0  # incremental: nothing counted twice

    with runtime.db.transaction() as db:
        found = indicators.report(db, since=DAY, until=DAY + timedelta(days=2), client_id="tax")
    day0, day1, day2 = found.rows
    assert day0.values == {
        "started": 8,
        "completed": 8,
        "completed_sso": None,  # 2: fewer than 5
        "failed": 0,
        "abandoned": 0,
        "citizens": 6,
        "new_citizens": 6,
        "returning_citizens": 0,
        "consents_given": 0,
        "consents_revoked": 0,
    }
    assert day0.completion_rate == 1.0
    assert day0.sso_share is None
    assert (day0.median_seconds, day0.p95_seconds) == (30, 60)
    assert day1.values == {
        "started": 9,
        "completed": 6,
        "completed_sso": 0,
        "failed": None,  # 2
        "abandoned": None,  # 1
        "citizens": 6,
        "new_citizens": None,  # 1 new, so returning (5) is hidden too
        "returning_citizens": None,
        "consents_given": None,
        "consents_revoked": 0,
    }
    assert day1.completion_rate == round(6 / 9, 4)
    assert (day1.median_seconds, day1.p95_seconds) == (30, 30)
    assert set(day2.values.values()) == {None}  # two citizens: nothing shown
    assert found.total is not None
    assert found.total.values["citizens"] == 9  # exact union of the three days
    assert found.total.values["new_citizens"] == 9
    assert found.total.values["started"] == 19
    assert found.breakdowns["acr"] == {"low": None, "substantial": 15}
    assert found.breakdowns["amr"] == {"mfa+otp+pwd": 15, "pwd": None}
    assert found.breakdowns["failed"] == {"password:credentials": None}
    assert found.breakdowns["abandoned"] == {"password": None}

    with runtime.db.transaction() as db:
        weekly = indicators.report(
            db, since=DAY, until=DAY + timedelta(days=2), period="w", client_id="tax"
        )
        everyone = indicators.report(db, since=DAY, until=DAY + timedelta(days=1))
        raw = {
            (r.metric, r.dim): r.value
            for r in db.scalars(
                select(StatsCount).where(
                    StatsCount.period == "d",
                    StatsCount.client_id == "tax",
                    StatsCount.start == DAY + timedelta(days=1),
                )
            )
        }
    with runtime.db.transaction() as db:
        # Whole months (February, March) count by their month sets, the days around by theirs.
        long = indicators.report(
            db, since=DAY - timedelta(days=40), until=DAY + timedelta(days=40), client_id="tax"
        )
    assert long.total is not None and long.total.values["started"] == 19
    assert long.total.values["citizens"] == 9 and long.total.values["new_citizens"] == 9
    (week,) = weekly.rows
    assert week.values["citizens"] == 9 and week.values["completed"] == 16
    assert raw[("failed", "password:credentials")] == 2 and raw[("abandoned", "password")] == 1
    # All e-services: day 0 has the 6 tax citizens and 3 health citizens.
    assert everyone.rows[0].values["citizens"] == 9
    assert everyone.system[0]["active_citizens"] == 9
    assert everyone.system[0]["lockouts"] == 6
    assert everyone.system[0]["locked_citizens"] == 6
    assert everyone.system[0]["password_resets"] is None  # one citizen


def test_dashboard_exports_and_refuses_bad_filters(
    runtime: Runtime, console: Console, admin: Citizen
) -> None:
    history(runtime)
    rollup.run(runtime)
    query = "?since=2026-03-02&until=2026-03-04&client=tax"
    page = console.open(admin, "/admin/indicators" + query)
    assert page.status_code == 200, page.text
    assert "<svg" in page.text and 'aria-describedby="table-signins"' in page.text
    assert "suppressed" in page.text
    csv_text = console.get("/admin/indicators.csv" + query).text
    lines = csv_text.splitlines()
    assert lines[0].startswith("period,start,started,completed")
    assert lines[1].startswith("d,2026-03-02,8,8,1.0,0,0,6,6,0,")
    body = console.get("/admin/indicators.json" + query).json()
    assert body["periods"][2]["citizens"] is None and body["total"]["citizens"] == 9
    bad = console.get("/admin/indicators?since=tomorrow")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
