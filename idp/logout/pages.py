"""What the signed-out page shows, carried from the logout to that page (303 after a POST).

The e-services' front-channel pages, the way back to the e-service and the language travel in
the page's address, encrypted and authenticated with a key of their own (no one can forge a
redirect, and the address does not reveal which e-services the citizen used); it is valid for a
few minutes. Whether the citizen is signed out is never taken from it: the page looks.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from idp.config import Settings
from idp.logout.ending import FrontChannel
from idp.security import derive_key, master_key

MAX_AGE = 600


@dataclass
class Outcome:
    frontchannel: list[FrontChannel] = field(default_factory=list)
    redirect: str | None = None
    service: str | None = None
    locale: str | None = None


@lru_cache(maxsize=8)
def _fernet(master: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive_key(master, "idp logout page")))


def seal(settings: Settings, outcome: Outcome) -> str:
    data: dict[str, Any] = {
        "f": [[item.name, item.url] for item in outcome.frontchannel],
        "r": outcome.redirect,
        "s": outcome.service,
        "l": outcome.locale,
    }
    text = json.dumps(data, separators=(",", ":")).encode()
    return _fernet(master_key(settings)).encrypt(text).decode()


def unseal(settings: Settings, value: str | None) -> Outcome | None:
    if not value or len(value) > 16384:
        return None
    try:
        text = _fernet(master_key(settings)).decrypt(value.encode(), ttl=MAX_AGE)
        data = json.loads(text)
        return Outcome(
            frontchannel=[FrontChannel(str(name), str(url)) for name, url in data["f"]],
            redirect=data["r"],
            service=data["s"],
            locale=data["l"],
        )
    except (InvalidToken, ValueError, KeyError, TypeError):
        return None
