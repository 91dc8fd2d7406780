"""An audit entry's data as an administrator reads it: labelled fields in the page's language,
not JSON. A change (`admin.client_updated`'s `changes: {field: {before, after}}`) becomes one
field per changed field of the e-service, read "before → after"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request

from idp.admin.client_fields import FIELDS
from idp.datetimes import format_datetime
from idp.i18n import N_, gettext_for, negotiate
from idp.templating import time_zone

Translate = Callable[..., str]

# The data of the events, by key (`idp.events.record(..., **data)`); a key not named here is
# shown as it is stored, marked as code.
LABELS = {
    "activates_at": N_("Signs from"),
    "acr": N_("Assurance level"),
    "admin": N_("Administrator"),
    "alg": N_("Algorithm"),
    "amr": N_("Methods"),
    "anchor_hash": N_("Hash of the anchor"),
    "anchor_seq": N_("Anchor (last entry pruned)"),
    "attempts": N_("Attempts"),
    "auth_method": N_("Authentication"),
    "backchannel": N_("Back-channel logout"),
    "before": N_("Entries before"),
    "claims": N_("Claims"),
    "count": N_("How many"),
    "entry": N_("Entry"),
    "error": N_("Error"),
    "expires_at": N_("Expires"),
    "failures": N_("Failed attempts"),
    "first_party": N_("State e-service (no consent asked)"),
    "frontchannel": N_("Front-channel logout"),
    "grant_type": N_("Grant type"),
    "grants_revoked": N_("Grants revoked"),
    "had_totp": N_("Had an authenticator app"),
    "kid": N_("Key id"),
    "kind": N_("Kind"),
    "name": N_("Name"),
    "note": N_("Note"),
    "reason": N_("Reason"),
    "recovery_codes_removed": N_("Recovery codes removed"),
    "refresh_token": N_("Refresh token issued"),
    "remaining": N_("Remaining"),
    "removed": N_("Entries removed"),
    "report": N_("Report"),
    "retry_at": N_("Next attempt"),
    "scope": N_("Scopes"),
    "seconds": N_("Seconds"),
    "secret_removed": N_("Client secret removed"),
    "sessions": N_("Sessions"),
    "sessions_ended": N_("Sessions ended"),
    "sid": N_("Session"),
    "sso": N_("Single sign-on"),
    "step_up": N_("Step-up"),
    "token_id": N_("Token id"),
    "totp": N_("Authenticator app"),
    "ua": N_("Browser"),
    "unpublished": N_("Unpublished"),
    "until": N_("Until"),
    "username": N_("Username"),
    "uses": N_("Uses"),
    "was_throttled": N_("Was locked or delayed"),
}
TIMES = frozenset({"activates_at", "expires_at", "retry_at", "until", "before"})


@dataclass(frozen=True)
class Detail:
    """One field: its label and value as text. `raw` says the label is a stored key (no
    label is known for it); a change has `before` too (then `value` is the value after)."""

    label: str
    value: str
    raw: bool = False
    before: str | None = None

    @property
    def change(self) -> bool:
        return self.before is not None


@dataclass(frozen=True)
class Reader:
    """Values in the language and time zone of a page."""

    translate: Translate
    locale: str
    zone: ZoneInfo

    def shown(self, value: Any, *, time: bool = False) -> str:
        """A stored value as text: "none", yes or no, a time, a list, a key set by its keys."""
        _ = self.translate
        if value is None or value == [] or value == "":
            return _(N_("none"))
        if isinstance(value, bool):
            return _(N_("yes")) if value else _(N_("no"))
        if isinstance(value, str) and time:
            try:
                return format_datetime(datetime.fromisoformat(value), self.locale, self.zone)
            except ValueError:
                return value
        if isinstance(value, list):
            return ", ".join(self.shown(item) for item in value)
        if isinstance(value, dict):
            if set(value) == {"kid", "thumbprint"}:  # a key of a JWKS, as changes record it
                return f"{value['kid'] or '?'} ({value['thumbprint']})"
            return "; ".join(f"{key}: {self.shown(item)}" for key, item in value.items())
        return str(value)

    def details(self, data: Mapping[str, Any]) -> list[Detail]:
        """The fields of an entry's data: each change first, then the rest in stored order."""
        found: list[Detail] = []
        changes = data.get("changes")
        if isinstance(changes, dict):
            for name, change in changes.items():
                if not isinstance(change, dict):
                    continue
                label = FIELDS.get(name)
                found.append(
                    Detail(
                        self.translate(label) if label else name,
                        self.shown(change.get("after")),
                        raw=label is None,
                        before=self.shown(change.get("before")),
                    )
                )
        for key, value in data.items():
            if key == "changes" and isinstance(changes, dict):
                continue
            label = LABELS.get(key)
            found.append(
                Detail(
                    self.translate(label) if label else key,
                    self.shown(value, time=key in TIMES),
                    raw=label is None,
                )
            )
        return found


def reader(request: Request) -> Reader:
    """Values as the page of `request` shows them."""
    locale = negotiate(request)
    return Reader(gettext_for(locale), locale, time_zone(request))
