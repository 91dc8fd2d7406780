"""The frame of every page: GOV.UK Frontend with our own name, mark and fonts, served without
inline scripts; a page for an unknown address; times in the citizen's language and zone."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from importlib.metadata import version
from pathlib import Path

import pytest
from jinja2 import UndefinedError
from markupsafe import Markup
from pydantic import ValidationError
from starlette.testclient import TestClient

from idp.templating import STATIC_DIR, environment
from tests.conftest import make_settings
from tests.signin.helpers import heading

REPO = Path(__file__).resolve().parent.parent
# govuk-frontend-jinja and the GOV.UK Frontend it is a port of, as its README pairs them.
MATCHING_FRONTEND = {"4.1.0": "6.3.0"}


def test_unknown_address_is_a_page_for_a_browser_and_json_for_others(client: TestClient) -> None:
    page = client.get(
        "/no-such-page", headers={"Accept": "text/html", "Accept-Language": "ru, en;q=0.5"}
    )
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="ru">' in page.text
    assert heading(page.text) == "Страница не найдена"
    english = client.get("/no-such-page?lang=en", headers={"Accept": "text/html"})
    assert english.status_code == 404 and heading(english.text) == "Page not found"
    # An e-service or a script asking for anything else gets the JSON error, as before.
    for accept in ("application/json", "*/*"):
        answer = client.get("/no-such-page", headers={"Accept": accept})
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"


def test_favicon_is_our_own_mark(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    page = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert '<link rel="icon" sizes="48x48" href="/favicon.ico">' in page.text
    svg = re.search(r'<link rel="icon" sizes="any" href="([^"]+)"', page.text)
    assert svg is not None and client.get(svg.group(1)).status_code == 200


def test_pages_load_the_vendored_frontend_and_no_inline_script(client: TestClient) -> None:
    page = client.get("/no-such-page", headers={"Accept": "text/html"}).text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="' in attributes and not body for attributes, body in scripts)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert "/static/idp.css" in assets and "/static/init.mjs" in assets
    for path in assets:
        assert client.get(path).status_code == 200, path
    # The module that starts GOV.UK Frontend's components imports the vendored copy.
    init = client.get("/static/init.mjs").text
    imported = re.search(r'from "\./(govuk/[^"]+)"', init)
    assert imported and client.get(f"/static/{imported.group(1)}").status_code == 200


def test_vendored_frontend_is_the_version_the_macros_port() -> None:
    css = (STATIC_DIR / "idp.css").read_text(encoding="utf-8-sig")
    built = re.search(r'--govuk-frontend-version: ?"([0-9.]+)"', css)
    assert built is not None
    pinned = json.loads((REPO / "frontend" / "package.json").read_text())
    assert pinned["devDependencies"]["govuk-frontend"] == built.group(1)
    assert MATCHING_FRONTEND[version("govuk-frontend-jinja")] == built.group(1)
    licence = (STATIC_DIR / "govuk" / "LICENSE.txt").read_text()
    assert f"GOV.UK Frontend {built.group(1)}" in licence and "MIT License" in licence


def test_none_of_gov_uks_own_identity_is_used() -> None:
    css = (STATIC_DIR / "idp.css").read_text(encoding="utf-8-sig")
    assert "GDS Transport" not in css and "@font-face" not in css
    assert '"Noto Sans Armenian"' in css
    shipped = {path.name for path in STATIC_DIR.rglob("*") if path.is_file()}
    gov_uk_images = {"govuk-crest.svg", "govuk-icon-mask.svg", "govuk-opengraph-image.png"}
    assert not shipped & gov_uk_images
    assert not [name for name in shipped if "crown" in name or name.startswith("govuk-icon")]
    assert not [name for name in shipped if name.endswith((".woff", ".woff2"))]


def test_our_templates_stay_strict_while_gov_uk_macros_run() -> None:
    env = environment()
    with pytest.raises(UndefinedError):
        env.from_string("{{ misspelt }}").render()
    button = env.from_string(
        '{% from "govuk_frontend_jinja/components/button/macro.html" import govukButton %}'
        '{{ govukButton({"text": label, "classes": "govuk-button--warning"}) }}'
    )
    html = button.render(label="End <all> sessions")
    assert 'class="govuk-button govuk-button--warning"' in html
    assert "End &lt;all&gt; sessions" in html
    with pytest.raises(UndefinedError):  # a page's own value is still checked
        button.render()


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "7 Mar 2025, 14:05"),
        ("ru", "7 мар. 2025\u202fг., 14:05"),  # noqa: RUF001 (Russian)
        ("hy", "2025 թ. մրտ 7, 14:05"),
    ],
)
def test_times_show_in_the_page_language_and_the_configured_zone(
    tmp_path: Path, locale: str, expected: str
) -> None:
    settings = make_settings(tmp_path, "sqlite://", time_zone="Asia/Yerevan")
    when = datetime(2025, 3, 7, 10, 5, 7, 123456, tzinfo=UTC)
    template = environment().from_string("{{ when|datetime }}|{{ naive|datetime }}|{{ none|date }}")
    shown = template.render(
        when=when,
        naive=when.replace(tzinfo=None),  # a time read without its zone is UTC
        none=None,
        locale=locale,
        time_zone=settings.zone,
    )
    assert shown == f"{expected}|{expected}|"
    day = environment().from_string("{{ day|date('long') }}")
    assert "2025" in day.render(day=date(2025, 3, 7), locale=locale, time_zone=settings.zone)


def test_time_zone_must_be_a_known_zone(tmp_path: Path) -> None:
    assert make_settings(tmp_path, "sqlite://", time_zone="UTC").zone.key == "UTC"
    for bad in ("Mars/Olympus_Mons", "../etc/passwd", ""):
        with pytest.raises(ValidationError, match="time zone"):
            make_settings(tmp_path, "sqlite://", time_zone=bad)


def test_an_action_that_cannot_be_undone_is_confirmed_with_a_warning_button() -> None:
    """`confirm_action` (templates/components.html), for the account and admin pages."""
    page = environment().from_string(
        '{% from "components.html" import confirm_action with context %}'
        '{{ confirm_action("/account/sessions/end-all", "Sign out everywhere", '
        'warning="Every device will be signed out.", cancel_url="/account/sessions", '
        'carried=[("sid", "s1")]) }}'
    )
    html = page.render(
        _=lambda message, **values: message % values if values else message,
        csrf_field=lambda: Markup('<input type="hidden" name="csrf_token" value="t">'),
    )
    form = re.search(
        r'<form method="post" action="/account/sessions/end-all".*?</form>', html, re.S
    )
    assert form is not None
    assert 'name="csrf_token"' in form.group(0) and 'name="sid" value="s1"' in form.group(0)
    assert re.search(r'<button[^>]*class="govuk-button govuk-button--warning"', form.group(0))
    assert "Every device will be signed out." in html and 'href="/account/sessions"' in html
