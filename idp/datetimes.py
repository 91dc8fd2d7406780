"""Dates and times as a citizen reads them: in the page's language, in the provider's time zone
(`time_zone`), to the minute. The database keeps UTC; a time without a zone is taken as UTC.

Pages use the `datetime` and `date` filters (`idp/templating.py`): `{{ when|datetime }}`
gives "7 Mar 2025, 14:05" in English, and the same in Armenian and Russian in their own
words and order (CLDR's, through Babel); `{{ when|datetime("long") }}` spells the month out.
English follows British usage (day before month, 24-hour clock), like the other two languages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import date as Date
from typing import Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date as babel_date
from babel.dates import format_time, get_datetime_format

Width = Literal["short", "medium", "long"]
BABEL_LOCALES = {"en": "en_GB"}  # 24-hour clock, day before month


def babel_locale(locale: str) -> str:
    return BABEL_LOCALES.get(locale, locale)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def format_datetime(
    value: datetime | None, locale: str, zone: ZoneInfo, width: Width = "medium"
) -> str:
    """The date (`width`) and time (hours and minutes) of `value` in `zone`; "" for None."""
    if value is None:
        return ""
    local = _aware(value).astimezone(zone)
    language = babel_locale(locale)
    pattern = str(get_datetime_format(width, locale=language))
    day = babel_date(local, width, locale=language)
    time = format_time(local, "short", locale=language)
    return pattern.replace("{1}", day).replace("{0}", time)


def format_date(
    value: datetime | Date | None, locale: str, zone: ZoneInfo, width: Width = "medium"
) -> str:
    """The day of `value` (a time is first moved into `zone`); "" for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _aware(value).astimezone(zone).date()
    return babel_date(value, width, locale=babel_locale(locale))
