"""A refused action is explained in the administrator's language; the command line and the
JSON APIs keep saying it in English."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.cli import main
from idp.config import Settings
from idp.db.models import Client
from idp.runtime import Runtime
from tests.admin.api_helpers import admin_client, token
from tests.admin.conftest import Console
from tests.conftest import make_settings
from tests.protocol.test_sector_identifier import Documents
from tests.signin.helpers import Citizen

TAX = "https://tax.example.am/callback"
CUSTOMS = "https://customs.example.am/callback"
WIZARD = {
    "name": "Revenue committee",
    "redirect_uris": f"{TAX} {CUSTOMS}",
    "auth_method": "client_secret_basic",
    "grant_types": "authorization_code",
    "scopes": "profile",
    "allowed_claims": "name",
    "subject_type": "pairwise",
    "access_token_format": "opaque",
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The provider may fetch from this machine (the sector documents are served on loopback)."""
    return make_settings(tmp_path, database_url, client_fetch_private_addresses=True)


@pytest.fixture
def documents() -> Iterator[Documents]:
    server = Documents()
    server.publish("/incomplete.json", [TAX])
    yield server
    server.close()


def wizard(console: Console, admin: Citizen, locale: str, **fields: str) -> str:
    """Submit the registration wizard in `locale`; the refusal page's text."""
    page = console.open(admin, f"/admin/clients/new?lang={locale}")
    assert f'<html lang="{locale}">' in page.text
    sent = console.post_form(page, "/admin/clients/new", {**WIZARD, **fields})
    assert sent.status_code == 400
    assert f'<html lang="{locale}">' in sent.text
    assert 'value="Revenue committee"' in sent.text  # what was typed is kept
    return sent.text


@pytest.mark.parametrize(
    ("locale", "problem", "reason"),
    [
        ("hy", "Խնդիր կա", "վերահղման հասցե պետք է օգտագործի https"),
        ("ru", "Возникла проблема", "адрес перенаправления должен использовать https"),
        ("en", "There is a problem", "redirect URI must use https"),
    ],
)
def test_the_wizard_explains_a_bad_redirect_uri_in_the_administrators_language(
    console: Console, admin: Citizen, runtime: Runtime, locale: str, problem: str, reason: str
) -> None:
    text = wizard(console, admin, locale, redirect_uris="http://tax.example.am/callback")
    assert problem in text
    assert reason in text
    assert "http://tax.example.am/callback" in text
    with runtime.db.read() as db:
        assert db.scalar(select(Client)) is None


@pytest.mark.parametrize(
    ("locale", "reason"),
    [
        ("hy", "ոլորտի նույնացուցիչի «{url}» հասցեում նշված չէ «{missing}» վերահղման հասցեն"),
        (
            "ru",
            "в документе по адресу идентификатора сектора «{url}» нет адреса перенаправления "
            "«{missing}»",
        ),
    ],
)
def test_the_wizard_explains_a_sector_refusal_in_the_administrators_language(
    console: Console,
    admin: Citizen,
    runtime: Runtime,
    documents: Documents,
    locale: str,
    reason: str,
) -> None:
    url = documents.url("/incomplete.json")
    text = wizard(console, admin, locale, sector_identifier_uri=url)
    assert reason.format(url=url, missing=CUSTOMS) in text
    with runtime.db.read() as db:
        assert db.scalar(select(Client)) is None


@pytest.mark.parametrize(
    ("locale", "reason"),
    [("hy", "«nobody-here» օգտատեր չկա"), ("ru", "пользователя «nobody-here» нет")],
)
def test_a_refused_page_speaks_the_administrators_language(
    console: Console, admin: Citizen, locale: str, reason: str
) -> None:
    console.open(admin, f"/admin/?lang={locale}")
    page = console.get("/admin/citizens/nobody-here")
    assert page.status_code == 404
    assert reason in page.text


def test_the_admin_api_and_the_command_line_stay_english(
    client: TestClient,
    runtime: Runtime,
    documents: Documents,
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = documents.url("/incomplete.json")
    bearer = {
        "Authorization": f"Bearer {token(client, admin_client(runtime))}",
        "Accept-Language": "ru",
    }
    body = {
        "name": "Revenue",
        "redirect_uris": [TAX, CUSTOMS],
        "subject_type": "pairwise",
        "sector_identifier_uri": url,
    }
    refused = client.post("/admin/api/v1/clients", json=body, headers=bearer)
    assert refused.status_code == 400
    assert refused.json()["error_description"] == (
        f"sector identifier URI '{url}' does not list redirect URI '{CUSTOMS}'"
    )
    monkeypatch.setenv("IDP_CLIENT_FETCH_PRIVATE_ADDRESSES", "true")
    code = main(
        [
            "clients",
            "create",
            "--name",
            "Revenue",
            "--redirect-uri",
            "http://tax.example.am/callback",
            "--json",
        ]
    )
    assert code == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error == (
        "redirect URI must use https (plain http only on localhost/127.0.0.1): "
        "'http://tax.example.am/callback'"
    )
