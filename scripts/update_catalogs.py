"""Extract the messages of the pages and emails and merge them into the hy, en, ru catalogs.

Run after changing a message; then translate the new (empty) entries in
`idp/translations/<locale>/LC_MESSAGES/messages.po` (a message with a number has one `msgstr[i]`
per plural form of the language, as its `Plural-Forms` header says). The provider reads the
`.po` files directly: there is no compile step.

Messages already in a catalog keep their place and their header dates; new ones are added at
the end, and messages no longer in the code are removed, so that the diff shows only what
changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "idp" / "translations"
LOCALES = ("hy", "en", "ru")
# `_(message)`, `N_(message)`; `_n(singular, plural, n)`, `N_n(singular, plural, count)`.
KEYWORDS = {"_": None, "N_": None, "_n": (1, 2), "N_n": (1, 2)}
HEADER = (
    "# Messages of the sign-in pages and emails ({locale}).\n"
    "# Updated by scripts/update_catalogs.py."
)


def template() -> Catalog:
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    catalog = Catalog(project="idp", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def keep_order(catalog: Catalog, known: list[Any]) -> None:
    """Put the messages that were in the catalog before back in their earlier order, followed
    by the new ones in the order of the code."""
    rank = {_key(message_id): index for index, message_id in enumerate(known)}
    messages = [message for message in catalog if message.id]
    messages.sort(key=lambda message: rank.get(_key(message.id), len(rank)))
    for message in messages:
        del catalog[message.id]
    for message in messages:
        catalog[message.id] = message


def _key(message_id: Any) -> str:
    """A message's identity in a catalog: its singular, whether or not it has a plural."""
    return str(message_id[0] if isinstance(message_id, tuple | list) else message_id)


def main() -> None:
    pot = template()
    for locale in LOCALES:
        path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
        else:
            catalog = Catalog(locale=locale, project="idp", charset="utf-8")
        known = [message.id for message in catalog if message.id]
        catalog.update(pot, no_fuzzy_matching=True, update_creation_date=False)
        catalog.obsolete.clear()
        keep_order(catalog, known)
        catalog.fuzzy = False
        catalog.header_comment = HEADER.format(locale=locale)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=0, include_previous=False, include_lineno=False)
        untranslated = [m.id for m in catalog if m.id and not m.string]
        print(f"{locale}: {len(catalog)} messages, {len(untranslated)} untranslated")


if __name__ == "__main__":
    main()
