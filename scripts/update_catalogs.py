"""Extract the messages of the pages and emails and merge them into the hy, en, ru catalogs.

Run after changing a message; then translate the new (empty) entries in
`idp/translations/<locale>/LC_MESSAGES/messages.po`. The provider reads the `.po` files
directly: there is no compile step.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "idp" / "translations"
LOCALES = ("hy", "en", "ru")
KEYWORDS = {"_": None, "N_": None}
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
        catalog.update(pot, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False
        catalog.header_comment = HEADER.format(locale=locale)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=0, include_previous=False, include_lineno=False)
        untranslated = [m.id for m in catalog if m.id and not m.string]
        print(f"{locale}: {len(catalog)} messages, {len(untranslated)} untranslated")


if __name__ == "__main__":
    main()
