"""A citizen's browser over real HTTP: signs in on our pages and consents."""

from __future__ import annotations

import time

import httpx
import pyotp

from tests.signin.helpers import forms

from .conftest import Provider


def submit(http: httpx.Client, page: httpx.Response, data: dict[str, str]) -> httpx.Response:
    form = next(f for f in forms(page.text) if f.method == "post")
    response = http.post(form.action, data={**form.fields, **data})
    assert response.status_code == 303, response.text
    return response


def sign_in_and_consent(
    provider: Provider, authorization_url: str, *, back_to: str = "https://eservice.example.am/"
) -> str:
    """Follow the provider's pages from the authorization URL to the e-service's callback
    (under `back_to`); returns the callback URL the browser would open."""
    with httpx.Client(base_url=provider.url, follow_redirects=False, timeout=10) as http:
        response = http.get(authorization_url)
        for _ in range(12):
            if response.status_code == 200:
                if 'name="password"' in response.text:
                    response = submit(
                        http,
                        response,
                        {"username": provider.username, "password": provider.password},
                    )
                elif 'name="code"' in response.text:
                    code = pyotp.TOTP(provider.totp_secret).at(time.time())
                    response = submit(http, response, {"code": code})
                elif 'name="decision"' in response.text:
                    response = submit(http, response, {"decision": "allow"})
                else:
                    raise AssertionError(f"unexpected page: {response.text[:2000]}")
                continue
            assert response.status_code in (302, 303), response.text
            location = response.headers["location"]
            if location.startswith(back_to):
                return location
            response = http.get(location)
    raise AssertionError("the sign-in never reached the e-service")
