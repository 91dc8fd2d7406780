"""Calendar periods of the indicators: day, ISO week (from Monday) and month, in UTC."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

PERIODS = ("d", "w", "m")
NAMES = {"d": "day", "w": "week", "m": "month"}


@lru_cache(maxsize=4096)  # the rollup asks for the same few days again and again
def start_of(period: str, day: date) -> date:
    if period == "w":
        return day - timedelta(days=day.weekday())
    if period == "m":
        return day.replace(day=1)
    return day


def next_start(period: str, start: date) -> date:
    if period == "w":
        return start + timedelta(days=7)
    if period == "m":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def starts(period: str, since: date, until: date) -> list[date]:
    """Every period start from the one holding `since` through the one holding `until`."""
    found = []
    current = start_of(period, since)
    while current <= until:
        found.append(current)
        current = next_start(period, current)
    return found
