"""Languages of the pages and emails: Armenian (default), English, Russian.

The catalogs are the Babel `.po` files under `idp/translations/<locale>/LC_MESSAGES/messages.po`;
they are read when this module is first imported, so a fresh clone needs no compile step.

Which language a page speaks: an explicit choice (`?lang=`, then the `idp_lang` cookie it sets),
then the e-service's `ui_locales`, then the browser's `Accept-Language`, then Armenian.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request

LOCALES = ("hy", "en", "ru")
DEFAULT_LOCALE = "hy"
LANG_COOKIE = "idp_lang"
LANG_PARAM = "lang"
LANGUAGE_NAMES = {"hy": "Հայերեն", "en": "English", "ru": "Русский"}
TRANSLATIONS_DIR = Path(__file__).parent / "translations"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalog of `locale` (English falls back to the message ids)."""
    path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale not in LOCALES or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def N_(message: str) -> str:
    """Mark a message for translation where it is defined; it is translated where shown."""
    return message


def gettext_for(locale: str) -> Callable[..., str]:
    """`_(message, **values)`: the translation, with `%(name)s` placeholders filled in."""
    catalog = translations(locale)

    def _(message: str, **values: Any) -> str:
        text = catalog.gettext(message)
        return text % values if values else text

    return _


def _match(tag: str) -> str | None:
    primary = tag.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if primary in LOCALES else None


def from_list(value: str | None) -> str | None:
    """The first supported language of a space-separated `ui_locales` list."""
    for tag in (value or "").split()[:10]:
        found = _match(tag)
        if found:
            return found
    return None


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most (`Accept-Language`, RFC 9110)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        found = _match(tag)
        if found and quality > 0:
            ranked.append((-quality, index, found))
    return min(ranked)[2] if ranked else None


def explicit_choice(request: Request) -> str | None:
    """The language the citizen picked: in the query now, or earlier (cookie)."""
    return _match(request.query_params.get(LANG_PARAM, "")) or _match(
        request.cookies.get(LANG_COOKIE, "")
    )


def negotiate(request: Request, ui_locales: str | None = None) -> str:
    """The language of the page for this request."""
    return (
        explicit_choice(request)
        or from_list(ui_locales)
        or from_accept_language(request.headers.get("accept-language"))
        or DEFAULT_LOCALE
    )
