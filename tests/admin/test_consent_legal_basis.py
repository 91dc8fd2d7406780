"""The legal basis an administrator records for an e-service is shown on the consent page."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from idp.runtime import Runtime
from tests.protocol.conftest import Flow, authorize, make_citizen, register, sign_in


def test_the_consent_page_shows_the_legal_basis(client: TestClient, runtime: Runtime) -> None:
    service = register(runtime, legal_basis="Law on social assistance, article 7.")
    user = make_citizen(runtime)
    sign_in(client, runtime, user)
    answer = authorize(client, Flow.new(service))
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/consent/")
    page = client.get(answer.headers["location"], headers={"accept-language": "en"})
    assert page.status_code == 200
    rows = {
        _text(key): _text(value)
        for key, value in re.findall(
            r'<dt class="govuk-summary-list__key">(.*?)</dt>\s*'
            r'<dd class="govuk-summary-list__value">(.*?)</dd>',
            page.text,
            re.S,
        )
    }
    assert rows["Legal basis"] == "Law on social assistance, article 7."


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
