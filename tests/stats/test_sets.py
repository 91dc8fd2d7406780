"""Unique citizens of any range: the union of whole months' and remaining days' sets is exact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from idp import events
from idp.runtime import Runtime
from idp.stats import rollup, sets

# Who signed in to `tax` on which day: month edges, a leap day, and citizens seen twice.
SIGNINS = {
    date(2028, 1, 30): {1, 2},
    date(2028, 1, 31): {3},
    date(2028, 2, 1): {1, 4},
    date(2028, 2, 15): {5, 6},
    date(2028, 2, 29): {7},
    date(2028, 3, 1): {8, 2},
    date(2028, 3, 31): {9},
    date(2028, 4, 1): {10, 5},
}


@pytest.fixture
def counted(runtime: Runtime) -> Runtime:
    for day, users in SIGNINS.items():
        for user in sorted(users):
            with runtime.db.transaction() as db:
                events.record(
                    db,
                    "signin.completed",
                    at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
                    user_id=user,
                    client_id="tax",
                    acr="substantial",
                    amr=["pwd"],
                    sso=False,
                    seconds=10,
                )
    rollup.run(runtime, batch=3)
    return runtime


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (date(2028, 1, 30), date(2028, 4, 1)),  # two whole months and days on both sides
        (date(2028, 2, 1), date(2028, 2, 29)),  # exactly one month
        (date(2028, 2, 1), date(2028, 3, 31)),  # exactly two months
        (date(2028, 1, 31), date(2028, 2, 28)),  # no whole month: days only
        (date(2028, 2, 2), date(2028, 3, 1)),  # within and across a month edge
        (date(2028, 3, 2), date(2028, 3, 30)),  # nobody
        (date(2027, 6, 1), date(2029, 6, 1)),  # longer than the history
    ],
)
def test_the_unique_citizens_of_a_range_are_exact(
    counted: Runtime, since: date, until: date
) -> None:
    expected: set[int] = set()
    day = since
    while day <= until:
        expected |= SIGNINS.get(day, set())
        day += timedelta(days=1)
    with counted.db.transaction() as db:
        assert sets.range_size(db, "tax", "citizens", since, until) == len(expected)
        assert sets.range_size(db, "*", "citizens", since, until) == len(expected)
