"""The pages speak Armenian, English and Russian, and keep the citizen's choice."""

from __future__ import annotations

import contextlib
import gettext
import importlib.util
import io
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from idp import i18n
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services.errors import InvalidInput
from tests.signin.helpers import Browser, add_citizen, error_text, heading, outbox

ROOT = Path(__file__).resolve().parents[2]
SIGN_IN = {"hy": "Մուտք", "en": "Sign in", "ru": "Вход"}


@pytest.mark.parametrize("locale", ["hy", "en", "ru"])
def test_pages_render_in_each_language(browser: Browser, runtime: Runtime, locale: str) -> None:
    add_citizen(runtime, totp=False)
    interaction_id = browser.start()
    page = browser.page(f"/login/{interaction_id}?lang={locale}")
    assert f'<html lang="{locale}">' in page.text
    assert heading(page.text) == SIGN_IN[locale]
    # The choice is kept for the next pages (a cookie), including after a POST and an error.
    wrong = browser.sign_in_password(interaction_id, "anahit", "wrong password here")
    error_page = browser.page(wrong.headers["location"])
    assert f'<html lang="{locale}">' in error_page.text
    enrol = browser.follow(
        browser.sign_in_password(interaction_id, "anahit", "correct horse battery staple")
    )
    assert f'<html lang="{locale}">' in enrol.text
    assert "<svg" in enrol.text


def test_ui_locales_then_accept_language_then_armenian(browser: Browser, runtime: Runtime) -> None:
    by_request = browser.start(ui_locales="fr ru en")
    assert '<html lang="ru">' in browser.page(f"/login/{by_request}").text
    plain = browser.start()
    english = browser.page(f"/login/{plain}", headers={"Accept-Language": "de, en;q=0.8"})
    assert '<html lang="en">' in english.text
    assert '<html lang="hy">' in browser.page(f"/login/{plain}").text
    # An explicit choice wins over the e-service's and the browser's.
    browser.page(f"/login/{plain}?lang=en")
    assert '<html lang="en">' in browser.page(f"/login/{by_request}").text


def test_the_language_switch_links_every_language(browser: Browser) -> None:
    interaction_id = browser.start()
    page = browser.page(f"/login/{interaction_id}")
    for locale in ("hy", "en", "ru"):
        assert f'href="/login/{interaction_id}?lang={locale}"' in page.text


def test_emails_follow_the_chosen_language(browser: Browser, runtime: Runtime) -> None:
    add_citizen(runtime)
    interaction_id = browser.start(ui_locales="ru")
    forgot = browser.page(f"/login/{interaction_id}/forgot")
    browser.submit(forgot, {"username": "anahit"})
    message = outbox(runtime)[0]
    assert message["subject"] == "Сброс пароля"  # noqa: RUF001
    assert "lang=ru" in message["text"]


def _update_catalogs() -> Any:
    spec = importlib.util.spec_from_file_location(
        "update_catalogs", ROOT / "scripts" / "update_catalogs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _extracted() -> set[str | tuple[str, str]]:
    """The messages of the code: a string, or (singular, plural) for one with a number."""
    return {
        tuple(message.id) if isinstance(message.id, list | tuple) else message.id
        for message in _update_catalogs().template()
        if message.id
    }


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\(\w+\)s", text))


def test_every_message_is_translated_in_every_catalog() -> None:
    wanted = _extracted()
    assert "Sign in" in wanted
    # Messages with a number are found in Python (`N_n`) and in templates (`_n`).
    assert (
        "Too many attempts from your network. Wait %(seconds)s second and try again.",
        "Too many attempts from your network. Wait %(seconds)s seconds and try again.",
    ) in wanted
    assert (
        "You can ask for a new code in %(seconds)s second.",
        "You can ask for a new code in %(seconds)s seconds.",
    ) in wanted
    for locale in i18n.LOCALES:
        path = i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as handle:
            catalog = read_po(handle)
        entries = {
            tuple(m.id) if isinstance(m.id, list | tuple) else m.id: m.string for m in catalog
        }
        missing = sorted(str(m) for m in wanted if not entries.get(m))
        assert not missing, f"{locale}: untranslated {missing[:5]}"
        for message_id in wanted:
            string = entries[message_id]
            if isinstance(message_id, tuple):
                # One translation per plural form of the language, each with every value.
                assert isinstance(string, tuple), (locale, message_id)
                assert len(string) == catalog.num_plurals, (locale, message_id)
                assert all(string), (locale, message_id, "a plural form is untranslated")
                for form in string:
                    assert _placeholders(form) == _placeholders(message_id[1]), (locale, form)
            else:
                assert isinstance(string, str), (locale, message_id)
                assert _placeholders(message_id) == _placeholders(string), (locale, message_id)


@pytest.mark.parametrize("locale", ["hy", "en", "ru"])
def test_each_catalog_has_the_plural_rules_of_its_language(locale: str) -> None:
    """The `Plural-Forms` header chooses the same form as the language's CLDR rules."""
    path = i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    header = re.search(r'"Plural-Forms: nplurals=(\d+); plural=([^;]+);', path.read_text())
    assert header, f"{locale}: no Plural-Forms header"
    expected = get_plural(locale)
    assert int(header.group(1)) == expected.num_plurals
    ours, theirs = gettext.c2py(header.group(2)), gettext.c2py(expected.plural_expr)
    assert [ours(n) for n in range(1000)] == [theirs(n) for n in range(1000)]


@pytest.mark.parametrize(
    ("locale", "seconds", "wanted"),
    [
        ("en", 1, "Wait 1 second and try again."),
        ("en", 2, "Wait 2 seconds and try again."),
        ("hy", 1, "Սպասեք 1 վայրկյան"),
        ("hy", 30, "Սպասեք 30 վայրկյան"),
        ("ru", 1, "Подождите 1 секунду"),
        ("ru", 3, "Подождите 3 секунды"),
        ("ru", 5, "Подождите 5 секунд"),
        ("ru", 21, "Подождите 21 секунду"),
        ("ru", 12, "Подождите 12 секунд"),
    ],
)
def test_a_count_is_told_in_the_form_its_language_uses(
    browser: Browser, locale: str, seconds: int, wanted: str
) -> None:
    interaction_id = browser.start(ui_locales=locale)
    page = browser.page(f"/login/{interaction_id}?error=ip_limited&wait={seconds}")
    assert wanted in error_text(page.text)


@pytest.mark.parametrize(
    ("locale", "wanted"),
    [
        ("en", "It is valid for 10 minutes"),
        ("hy", "Այն գործում է 10 րոպե"),
        ("ru", "Он действует 10 минут"),
    ],
)
def test_the_emailed_code_says_how_long_it_lasts(
    browser: Browser, runtime: Runtime, locale: str, wanted: str
) -> None:
    citizen = add_citizen(runtime)
    interaction_id = browser.start(ui_locales=locale)
    browser.sign_in_password(interaction_id, citizen.username, citizen.password)
    page = browser.page(f"/login/{interaction_id}/email")
    browser.submit(page, {}, action=f"/login/{interaction_id}/email/send")
    assert wanted in outbox(runtime)[-1]["text"]
    assert wanted in browser.page(f"/login/{interaction_id}/email").text


def test_the_catalog_update_keeps_the_catalogs_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Updating the catalogs keeps every message that stays in the code where it was, with its
    translation (new ones go at the end), so that the diff shows only what changed."""
    module = _update_catalogs()
    shutil.copytree(i18n.TRANSLATIONS_DIR, tmp_path / "translations")
    monkeypatch.setattr(module, "TRANSLATIONS", tmp_path / "translations")
    with contextlib.redirect_stdout(io.StringIO()):
        module.main()
    for locale in i18n.LOCALES:
        relative = Path(locale, "LC_MESSAGES", "messages.po")
        before = _entries(i18n.TRANSLATIONS_DIR / relative)
        after = _entries(tmp_path / "translations" / relative)
        kept = [entry for entry in before if entry in after]
        assert [entry for entry in after if entry in before] == kept, locale
        assert len(kept) > 400, locale


def _entries(path: Path) -> list[tuple[Any, Any]]:
    with path.open("rb") as handle:
        return [(m.id, m.string) for m in read_po(handle) if m.id]


def test_a_refusal_with_a_number_is_worded_for_its_number(runtime: Runtime) -> None:
    """An administrator's refusal (`Reason`) with a number: English for the command line and
    the APIs, the page's language for the console."""
    many = [f"it{n}@tax.example.am" for n in range(client_service.MAX_CONTACTS + 1)]
    new = client_service.NewClient(
        name="Tax", redirect_uris=["https://tax.example.am/callback"], contacts=many
    )
    with pytest.raises(InvalidInput) as refused, runtime.db.transaction() as db:
        client_service.register_client(db, new, actor="test")
    assert str(refused.value) == "at most 10 contacts"
    assert refused.value.translated(i18n.gettext_for("ru")) == "не более 10 контактов"
    assert refused.value.translated(i18n.gettext_for("hy")) == "առավելագույնը 10 կոնտակտ"
