"""Languages of the pages and emails: Armenian (default), English, Russian.

The catalogs are the Babel `.po` files under `idp/translations/<locale>/LC_MESSAGES/messages.po`;
they are read when this module is first imported, so a fresh clone needs no compile step.

Which language a page speaks: an explicit choice (`?lang=`, then the `idp_lang` cookie it sets),
then the e-service's `ui_locales`, then the browser's `Accept-Language`, then Armenian.

A message with a number has a form for each of the language's plural categories (its `.po`
file's `Plural-Forms` header: Armenian and English two, Russian three): `_n(singular, plural,
n, **values)` picks the form for `n`, and a message marked with `N_n` where it is defined
carries its two English forms and the name of the value that holds the number, so that `_()`
picks the form by itself where it is shown.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Plural:
    """A message whose wording depends on a number (see `N_n`)."""

    singular: str
    plural: str
    count: str
    """The name of the value that holds the number."""


Message = str | Plural


def N_(message: str) -> str:
    """Mark a message for translation where it is defined; it is translated where shown."""
    return message


def N_n(singular: str, plural: str, count: str) -> Plural:
    """Mark a message with a number for translation where it is defined: its English singular
    and plural, and the name of the value that will hold the number where it is shown, e.g.
    `N_n("Wait %(seconds)s second.", "Wait %(seconds)s seconds.", "seconds")`."""
    return Plural(singular, plural, count)


def _number(value: Any) -> int:
    """The whole number that chooses a plural form (gettext's rules know only those): the
    value itself, or 2 for a fraction, whose form in English is the plural and in Russian the
    one of 2 ("1.5 seconds", "1,5 секунды")."""
    number = abs(float(value))
    return int(number) if number.is_integer() else 2


def _translate(catalog: gettext.NullTranslations, message: Message, values: dict[str, Any]) -> str:
    if isinstance(message, Plural):
        n = _number(values[message.count])
        text = catalog.ngettext(message.singular, message.plural, n)
    else:
        text = catalog.gettext(message)
    return text % values if values else text


def gettext_for(locale: str) -> Callable[..., str]:
    """`_(message, **values)`: the translation, with `%(name)s` placeholders filled in; a
    `Plural` message in the form its count value asks for."""
    catalog = translations(locale)

    def _(message: Message, /, **values: Any) -> str:
        return _translate(catalog, message, values)

    return _


def ngettext_for(locale: str) -> Callable[..., str]:
    """`_n(singular, plural, n, **values)`: the translation of a message with a number, in the
    form the language uses for `n`, with `%(name)s` placeholders filled in from `values`."""
    catalog = translations(locale)

    def _n(singular: str, plural: str, n: float, /, **values: Any) -> str:
        text = catalog.ngettext(singular, plural, _number(n))
        return text % values if values else text

    return _n


def english(message: Message, /, **values: Any) -> str:
    """A message in English as written in the code (no catalog), e.g. for the command line."""
    return _translate(gettext.NullTranslations(), message, values)


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
