"""Where a citizen's identity was used: every sign-in to an e-service and every release of
their data, read from the events (their own only)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.db.models import Client, Event
from idp.oauth.claims import CLAIM_LABELS

TYPES = ("signin.completed", "userinfo.released", "consent.granted", "consent.revoked")
PAGE_SIZE = 50
EXPORT_LIMIT = 10000

_BROWSERS = (
    ("Edge", re.compile(r"Edg(e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/")),
    ("Safari", re.compile(r"Safari/")),
)
_SYSTEMS = (
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("Linux", re.compile(r"Linux|X11")),
)


@dataclass(frozen=True)
class Device:
    """A short description of a browser's `User-Agent`: its browser and system when known,
    else the start of the header. `str()` gives the English form, e.g. "Firefox on Linux";
    the pages say it in the citizen's language."""

    browser: str | None
    system: str | None
    other: str | None = None

    def __str__(self) -> str:
        if self.browser and self.system:
            return f"{self.browser} on {self.system}"
        return self.browser or self.system or self.other or ""


def device(user_agent: str | None) -> Device | None:
    if not user_agent:
        return None
    browser = next((name for name, found in _BROWSERS if found.search(user_agent)), None)
    system = next((name for name, found in _SYSTEMS if found.search(user_agent)), None)
    return Device(browser, system, None if browser or system else user_agent[:60])


def citizen_claims(names: Iterable[str]) -> list[str]:
    """The claims among `names` a citizen reads about, in the consent page's order: the
    protocol's own (`sub`, ...) are left out."""
    wanted = set(names)
    return [name for name in CLAIM_LABELS if name in wanted]


@dataclass
class Entry:
    id: int
    at: datetime
    type: str
    client_id: str | None
    service: str | None
    claims: list[str]
    acr: str | None
    methods: list[str]
    sso: bool | None
    device: Device | None

    @property
    def released(self) -> list[str]:
        """The claims of this entry a citizen reads about (see `citizen_claims`)."""
        return citizen_claims(self.claims)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "type": self.type,
            "e_service": self.service,
            "client_id": self.client_id,
            "claims": self.claims,
            "acr": self.acr,
            "amr": self.methods,
            "single_sign_on": self.sso,
            "device": str(self.device) if self.device else None,
        }


def entry(event: Event, names: dict[str, str]) -> Entry:
    """One event as an entry of the history; `names`: the e-services' names by client id."""
    data = event.data or {}
    claims = data.get("claims") or []
    return Entry(
        id=event.id,
        at=event.at,
        type=event.type,
        client_id=event.client_id,
        service=names.get(event.client_id or "", event.client_id),
        claims=[str(c) for c in claims] if isinstance(claims, list) else [],
        acr=data.get("acr"),
        methods=[str(m) for m in data.get("amr") or []],
        sso=data.get("sso") if event.type == "signin.completed" else None,
        device=device(data.get("ua")),
    )


def client_names(db: Session) -> dict[str, str]:
    return {c: n for c, n in db.execute(select(Client.client_id, Client.name))}


def entries(db: Session, user_id: int, *, limit: int, offset: int = 0) -> list[Entry]:
    query = (
        select(Event)
        .where(Event.user_id == user_id, Event.type.in_(TYPES))
        .order_by(Event.at.desc(), Event.id.desc())
        .limit(limit)
        .offset(offset)
    )
    names = client_names(db)
    return [entry(event, names) for event in db.scalars(query)]


def find(db: Session, user_id: int, event_id: int) -> Event | None:
    """One entry of this citizen's history (another citizen's is not found)."""
    event = db.get(Event, event_id)
    if event is None or event.user_id != user_id or event.type not in TYPES:
        return None
    return event
