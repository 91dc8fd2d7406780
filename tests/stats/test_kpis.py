"""The key performance indicators of a known history, exactly: the service standard's four
(completion, satisfaction, digital take-up, cost per transaction) and the identity indicators,
with suppression and the change against the previous period."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from idp import events
from idp.db.models import Client, TotpCredential, User
from idp.runtime import Runtime
from idp.services import feedback, transactions
from idp.stats import export, indicators, rollup
from idp.stats.kpis import previous_range
from tests.admin.conftest import Console
from tests.signin.helpers import Citizen, add_citizen, add_client

MARCH, FEBRUARY = date(2026, 3, 1), date(2026, 2, 1)
END_OF_MARCH, END_OF_FEBRUARY = date(2026, 3, 31), date(2026, 2, 28)


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def record(runtime: Runtime, when: datetime, type: str, **values: Any) -> None:
    with runtime.db.transaction() as db:
        events.record(db, type, at=when, **values)


def signin(runtime: Runtime, day: date, user: int, client: str = "tax", **data: Any) -> None:
    values = {"acr": "substantial", "amr": ["mfa", "otp", "pwd"], "sso": False, "seconds": 20}
    values.update(data)
    record(runtime, at(day), "signin.started", client_id=client)
    record(runtime, at(day), "signin.completed", user_id=user, client_id=client, **values)


def rated(runtime: Runtime, day: date, source: str, *scores: int, client: str = "tax") -> None:
    for score in scores:
        record(
            runtime,
            at(day, 12),
            "feedback.rated",
            client_id=client,
            source=source,
            score=score,
            on=day.isoformat(),
        )


def accounts(runtime: Runtime) -> None:
    """25 citizens made in January: 15 confirm an authenticator app on 10 February, 5 on
    10 March, 5 never; one more with an app from 1 February is disabled on 15 March; an
    administrator with an app is never counted."""
    with runtime.db.transaction() as db:
        for n in range(27):
            user = User(sub=f"s-{n}", username=f"c{n}", created_at=at(date(2026, 1, 5)))
            user.disabled_at = at(date(2026, 3, 15)) if n == 25 else None
            user.is_admin = n == 26
            db.add(user)
            db.flush()
            if n < 20 or n >= 25:
                confirmed = at(
                    date(2026, 2, 10) if n < 15 else date(2026, 3, 10) if n < 20 else FEBRUARY
                )
                db.add(
                    TotpCredential(user_id=user.id, secret_encrypted="x", confirmed_at=confirmed)
                )


def history(runtime: Runtime) -> Citizen:
    """February, e-service `tax`: citizens 1-6 sign in once (20 s each, substantial); four
    ratings of its own (5, 5, 5, 4) and one posted in March about 27 February (5); 1000
    transactions (600 online), cost 5000.00.

    March, `tax`: citizens 1-10 sign in (10..100 s; 1-5 substantial, 6-10 low), 1-5 again by
    single sign-on; five wrong passwords; its own ratings 5, 5, 4, 4, 3, 2, 1; three of our
    questions answered (suppressed); 1003 transactions (800 online, 3 by post), cost 5015.00.
    `health`: three citizens (20-22) in March: suppressed throughout."""
    accounts(runtime)
    anahit = add_citizen(runtime)  # signs in to tax in January; rates a February transaction
    add_client(runtime)
    signin(runtime, date(2026, 1, 20), anahit.id)
    for user in range(1, 7):
        signin(runtime, date(2026, 2, 3), user)
    rated(runtime, date(2026, 2, 4), "eservice", 5, 5, 5, 4)
    for user in range(1, 11):
        acr = "substantial" if user <= 5 else "low"
        signin(runtime, date(2026, 3, 2), user, seconds=user * 10, acr=acr)
    for user in range(1, 6):
        signin(runtime, date(2026, 3, 3), user, sso=True, seconds=None)
    for _ in range(5):
        record(runtime, at(date(2026, 3, 4)), "signin.started", client_id="tax")
        record(
            runtime,
            at(date(2026, 3, 4)),
            "auth.password",
            outcome="failure",
            client_id="tax",
            reason="credentials",
        )
    rated(runtime, date(2026, 3, 5), "eservice", 5, 5, 4, 4, 3, 2, 1)
    rated(runtime, date(2026, 3, 5), "signin", 5, 4, 4)
    for user in (20, 21, 22):
        signin(runtime, date(2026, 3, 6), user, client="health")
    with runtime.db.transaction() as db:
        service = db.scalar(select(Client).where(Client.client_id == "tax"))
        assert service is not None
        feedback.rate_by_eservice(
            db,
            runtime,
            client=service,
            sub=db.get(User, anahit.id).sub,  # type: ignore[union-attr]
            score=5,
            transaction_at=at(date(2026, 2, 27)),
            now=at(date(2026, 3, 5)),
        )
        transactions.import_channel_totals(
            db,
            "client_id,month,channel,transactions\n"
            "tax,2026-02,online,600\ntax,2026-02,in_person,300\ntax,2026-02,phone,100\n"
            "tax,2026-03,online,800\ntax,2026-03,in_person,150\ntax,2026-03,phone,50\n"
            "tax,2026-03,post,3\n",
            actor="test",
        )
        transactions.import_costs(
            db, "client_id,month,amount\ntax,2026-02,5000\ntax,2026-03,5015.00\n", actor="test"
        )
    rollup.run(runtime)
    return anahit


def figures(found: indicators.Report) -> dict[str, tuple[Any, Any, Any]]:
    assert found.kpis is not None
    return {
        name: (figure.value, figure.previous, figure.change)
        for name, figure in found.kpis.figures.items()
    }


def test_the_kpis_of_a_known_history_with_the_change_against_the_month_before(
    runtime: Runtime,
) -> None:
    anahit = history(runtime)
    with runtime.db.read() as db:
        tax = indicators.report(
            db,
            since=MARCH,
            until=END_OF_MARCH,
            period="m",
            client_id="tax",
            adult_population=1000,
        )
        everyone = indicators.report(
            db, since=MARCH, until=END_OF_MARCH, period="m", adult_population=1000
        )
        health = indicators.report(db, since=MARCH, until=END_OF_MARCH, client_id="health")
    assert tax.kpis is not None
    assert (tax.kpis.previous_since, tax.kpis.previous_until) == (FEBRUARY, END_OF_FEBRUARY)
    assert figures(tax) == {
        # The service standard's four
        "completion_rate": (0.75, 1.0, -0.25),  # 15 of 20 started; 6 of 6
        "user_satisfaction": (0.5714, 1.0, -0.4286),  # 4 of 7 gave 4 or 5; 5 of 5
        "digital_take_up": (0.7976, 0.6, 0.1976),  # 800 of 1003 online; 600 of 1000
        "cost_per_transaction": (5.0, 5.0, 0.0),  # 5015.00 / 1003; 5000 / 1000
        # What they come from
        "user_satisfaction_mean": (3.43, 4.8, -1.37),  # 24 / 7; 24 / 5
        "user_satisfaction_ratings": (7, 5, 2),
        "signin_satisfaction": (None, None, None),  # three answers: suppressed
        "signin_satisfaction_mean": (None, None, None),
        "signin_satisfaction_ratings": (None, 0, None),
        "transactions": (1003, 1000, 3),
        "online_transactions": (800, 600, 200),
        "cost": (5015.0, 5000.0, 15.0),
        # Identity
        "active_citizens": (10, 6, 4),
        "adult_population_share": (None, None, None),  # of all e-services only
        # 20 of 25 at the end of March; 16 of 26 at the end of February (with the citizen
        # disabled in March)
        "second_factor_adoption": (0.8, 0.6154, 0.1846),
        "sso_reuse": (0.3333, 0.0, 0.3333),  # 5 of 15 completed by single sign-on
        "median_seconds": (50, 20, 30),
        "p95_seconds": (100, 20, 80),
    }
    mix = {level: (f.value, f.previous, f.change) for level, f in tax.kpis.assurance_mix.items()}
    assert mix == {"low": (0.3333, 0.0, 0.3333), "substantial": (0.6667, 1.0, -0.3333)}
    failures = {k: (f.value, f.previous, f.change) for k, f in tax.kpis.failure_reasons.items()}
    assert failures == {"password:credentials": (5, 0, 5)}
    (month,) = tax.rows
    assert month.satisfaction["eservice"] == {
        "ratings": 7,
        "mean": 3.43,
        "satisfied": 0.5714,
        "scores": {"1": None, "2": None, "3": None, "4": None, "5": None},  # one or two each
    }
    assert month.reported is not None and month.reported.channels == {
        "in_person": 150,
        "online": 800,
        "phone": 50,
        "post": None,  # three transactions: suppressed, but counted in the total
    }
    assert tax.previous is not None and tax.previous.satisfaction["eservice"]["scores"] == {
        "1": 0,
        "2": 0,
        "3": 0,
        "4": None,
        "5": None,
    }

    # All e-services: health's three citizens count in, anahit's January sign-in counts in
    # the active identities of the last 365 days.
    identities_march = len({*range(1, 11), 20, 21, 22, anahit.id})
    identities_february = len({*range(1, 7), anahit.id})
    found = figures(everyone)
    assert found["completion_rate"] == (round(18 / 23, 4), 1.0, round(18 / 23 - 1.0, 4))
    assert found["active_citizens"] == (13, 6, 7)
    assert found["adult_population_share"] == (
        identities_march / 1000,
        identities_february / 1000,
        round((identities_march - identities_february) / 1000, 4),
    )
    assert found["digital_take_up"] == (0.7976, 0.6, 0.1976)  # only tax reported
    assert found["user_satisfaction"] == (0.5714, 1.0, -0.4286)

    # Three citizens: every figure of health is suppressed, the change with it.
    health_figures = figures(health)
    assert health_figures["active_citizens"] == (None, 0, None)
    assert health_figures["completion_rate"] == (None, None, None)
    assert health.kpis is not None
    assert all(f.value is None for f in health.kpis.assurance_mix.values())


def test_the_exports_hold_exactly_the_kpis(
    runtime: Runtime, console: Console, admin: Citizen
) -> None:
    history(runtime)
    query = "?since=2026-03-01&until=2026-03-31&period=m&client=tax"
    assert console.open(admin, "/admin/indicators" + query).status_code == 200
    lines = console.get("/admin/indicators.csv" + query + "&table=kpis").text.splitlines()
    assert lines[0] == "figure,key,value,previous,change"
    assert "completion_rate,,0.75,1.0,-0.25" in lines
    assert "digital_take_up,,0.7976,0.6,0.1976" in lines
    assert "signin_satisfaction_ratings,,,0," in lines
    assert "failure_reasons,password:credentials,5,0,5" in lines
    periods = console.get("/admin/indicators.csv" + query).text.splitlines()
    header = periods[0].split(",")
    march = dict(zip(header, periods[1].split(","), strict=True))
    assert (march["eservice_ratings"], march["eservice_mean"], march["eservice_satisfied"]) == (
        "7",
        "3.43",
        "0.5714",
    )
    assert (march["transactions"], march["digital_take_up"], march["cost_per_transaction"]) == (
        "1003",
        "0.7976",
        "5.0",
    )
    body = console.get("/admin/indicators.json" + query).json()
    assert body["kpis"]["user_satisfaction"] == {
        "value": 0.5714,
        "previous": 1.0,
        "change": -0.4286,
    }
    assert body["kpis"]["currency"] == "AMD"
    assert body["previous"]["start"] == "2026-02-01"
    assert body["satisfaction"]["eservice"]["ratings"] == 7
    assert console.get("/admin/indicators.csv" + query + "&table=x").status_code == 400
    with runtime.db.read() as db:
        found = indicators.report(db, since=MARCH, until=END_OF_MARCH, period="m", client_id="tax")
    assert export.kpis_to_csv(found).splitlines() == lines


@pytest.mark.parametrize(
    ("since", "until", "before"),
    [
        (date(2026, 3, 1), date(2026, 3, 31), (date(2026, 2, 1), date(2026, 2, 28))),
        (date(2026, 1, 1), date(2026, 3, 31), (date(2025, 10, 1), date(2025, 12, 31))),
        (date(2026, 3, 2), date(2026, 3, 4), (date(2026, 2, 27), date(2026, 3, 1))),
        (date(2026, 3, 1), date(2026, 3, 30), (date(2026, 1, 30), date(2026, 2, 28))),
    ],
)
def test_the_previous_period_is_as_many_months_or_days_before(
    since: date, until: date, before: tuple[date, date]
) -> None:
    assert previous_range(since, until) == before


def test_a_rating_counts_on_the_day_of_the_transaction(runtime: Runtime) -> None:
    rated(runtime, date(2026, 3, 5), "eservice", 4, 4, 4, 4, 4, client="tax")
    record(runtime, at(date(2026, 3, 5)), "feedback.rated", client_id="tax", source="x", score=4)
    record(
        runtime, at(date(2026, 3, 5)), "feedback.rated", client_id="tax", source="eservice", score=9
    )
    rollup.run(runtime)
    with runtime.db.read() as db:
        week = indicators.report(db, since=date(2026, 3, 2), until=date(2026, 3, 8))
        before = indicators.report(db, since=date(2026, 3, 2), until=date(2026, 3, 4))
    assert week.total is not None and week.total.satisfaction["eservice"]["ratings"] == 5
    assert week.rows[3].satisfaction["eservice"]["mean"] == 4.0
    assert before.total is not None and before.total.satisfaction["eservice"]["ratings"] == 0
