"""The pages speak Armenian, English and Russian, and keep the citizen's choice."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from idp import i18n
from idp.runtime import Runtime
from tests.signin.helpers import Browser, add_citizen, heading, outbox

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


def _extracted() -> set[str]:
    spec = importlib.util.spec_from_file_location(
        "update_catalogs", ROOT / "scripts" / "update_catalogs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {message.id for message in module.template() if message.id}


def test_every_message_is_translated_in_every_catalog() -> None:
    wanted = _extracted()
    assert "Sign in" in wanted
    for locale in i18n.LOCALES:
        path = i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as handle:
            catalog = {m.id: m.string for m in read_po(handle) if m.id}
        missing = sorted(m for m in wanted if not catalog.get(m))
        assert not missing, f"{locale}: untranslated {missing[:5]}"
        for message_id in wanted:
            placeholders = set(re.findall(r"%\(\w+\)s", str(message_id)))
            assert placeholders == set(re.findall(r"%\(\w+\)s", str(catalog[message_id]))), (
                locale,
                message_id,
            )
