"""How the example e-services show what the provider sent: as a developer reads it.

Claims are shown as the JSON they arrived in (pretty-printed: `true`, `["pwd", "otp"]`, never
Python's `True` or `['pwd']`), and the times in them, which are seconds since 1970, also as
dates in ISO 8601 with their time zone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

# Claims whose value is a time (OpenID Connect Core §2, §5.1; RFC 7519 §4.1).
TIME_CLAIMS = ("iat", "nbf", "exp", "auth_time", "updated_at")


def as_json(value: Any) -> str:
    """Pretty-printed JSON, keys sorted, non-ASCII letters as they are."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def when(timestamp: Any) -> str:
    """A time in seconds since 1970 as an ISO 8601 date and time in UTC, e.g.
    `2026-03-01T09:00:15+00:00`; anything else as JSON."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        return as_json(timestamp)
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def times(claims: dict[str, Any]) -> list[tuple[str, str]]:
    """The time claims present, each with its date: (name, ISO 8601)."""
    return [(name, when(claims[name])) for name in TIME_CLAIMS if name in claims]
