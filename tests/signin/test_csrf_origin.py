"""Where a form post comes from: our own pages (whatever the referrer policy) or another site."""

from __future__ import annotations

import pytest

from idp.runtime import Runtime
from tests.signin.helpers import Browser, add_citizen, forms


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        # Under `Referrer-Policy: no-referrer` browsers send `Origin: null` for our own forms.
        ({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Origin": "http://localhost:8000", "Sec-Fetch-Site": "same-origin"}, True),
        ({}, True),  # a client that says nothing still needs the token
        ({"Origin": "null", "Sec-Fetch-Site": "cross-site"}, False),
        ({"Origin": "null"}, False),
        ({"Origin": "https://evil.example"}, False),
    ],
)
def test_form_origin(
    browser: Browser, runtime: Runtime, headers: dict[str, str], accepted: bool
) -> None:
    citizen = add_citizen(runtime)
    interaction_id = browser.start()
    page = browser.page(f"/login/{interaction_id}")
    form = forms(page.text)[0]
    response = browser.client.post(
        form.action,
        data={**form.fields, "username": citizen.username, "password": citizen.password},
        headers=headers,
        follow_redirects=False,
    )
    if accepted:
        assert response.status_code == 303
        assert response.headers["location"] == f"/login/{interaction_id}/totp"
    else:
        assert response.status_code == 403
