"""Protection of every form against cross-site request forgery (ASVS 3.5, NIST 800-63B §5.1).

A random value lives in a cookie (`HttpOnly`, `SameSite=Lax`, `__Host-` under https); each form
carries a keyed hash of it. A POST is accepted only when the two match and, if the browser says
where the request comes from (`Origin`), it comes from the provider itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from idp.config import Settings
from idp.i18n import N_
from idp.security import derive_key, master_key, random_token

FIELD = "csrf_token"
_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


class CsrfFailed(Exception):
    """The form did not come from our page; the app answers 403 with a friendly page."""


def cookie_name(settings: Settings) -> str:
    return "__Host-idp_csrf" if settings.issuer.startswith("https://") else "idp_csrf"


@lru_cache(maxsize=8)
def _key(master: bytes) -> bytes:
    return derive_key(master, "idp csrf")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


def _sign(value: str, settings: Settings) -> str:
    return hmac.new(_key(master_key(settings)), value.encode(), hashlib.sha256).hexdigest()


def _cookie_value(request: Request) -> str:
    """This browser's CSRF value, made (and remembered for the response) when it has none."""
    fresh = getattr(request.state, "csrf_new", None)
    if fresh:
        return str(fresh)
    existing = request.cookies.get(cookie_name(_settings(request)), "")
    if _VALUE.fullmatch(existing):
        return existing
    value = random_token(32)
    request.state.csrf_new = value
    return value


def csrf_token(request: Request) -> str:
    return _sign(_cookie_value(request), _settings(request))


def csrf_field(request: Request) -> Markup:
    """The hidden form field every form carries."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, csrf_token(request))


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Send the cookie if this response made a new value."""
    value = getattr(request.state, "csrf_new", None)
    if not value:
        return
    settings = _settings(request)
    response.set_cookie(
        cookie_name(settings),
        str(value),
        path="/",
        secure=settings.issuer.startswith("https://"),
        httponly=True,
        samesite="lax",
    )


def _same_origin(request: Request, settings: Settings) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        # Under `Referrer-Policy: no-referrer` browsers send `Origin: null` even for our own
        # forms; their `Sec-Fetch-Site` header still says where the request comes from.
        return request.headers.get("sec-fetch-site") == "same-origin"
    ours = urlsplit(settings.issuer)
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)


def verify_csrf(request: Request, form: Any) -> None:
    """Raise `CsrfFailed` unless the submitted form carries this browser's token."""
    settings = _settings(request)
    presented = form.get(FIELD) if form is not None else None
    cookie = request.cookies.get(cookie_name(settings), "")
    if not isinstance(presented, str) or not _VALUE.fullmatch(cookie):
        raise CsrfFailed
    if not hmac.compare_digest(_sign(cookie, settings), presented):
        raise CsrfFailed
    if not _same_origin(request, settings):
        raise CsrfFailed


async def csrf_failed(request: Request, exc: Exception) -> Response:
    """403 in the citizen's language, with a way back to try again."""
    from idp.templating import render  # the page needs the templating, not the reverse

    back = request.url.path if request.method == "POST" else None
    return render(
        request,
        "error.html",
        {
            "title": N_("This form has expired"),
            "message": N_(
                "For your security the form could not be accepted. Please go back and try again."
            ),
            "link": back,
            "link_text": N_("Try again"),
        },
        status_code=403,
    )
