"""The provider's public documents and error answers, as a browser meets them."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.browser.conftest import Visit
from tests.demo_stack import Stack


def test_accessibility_check_catches_violations(
    stack: Stack, open_tab: Callable[..., Visit]
) -> None:
    """The axe-core check is live: a page with an unlabelled field and no language fails it."""
    tab = open_tab()
    tab.page.set_content("<title>t</title><form><input type=text></form><img src=x.png>")
    found = {violation["id"] for violation in tab.violations()}
    assert {"label", "image-alt", "html-has-lang"} <= found


def test_metadata_and_keys_readable_by_e_service_pages(
    stack: Stack, open_tab: Callable[..., Visit]
) -> None:
    """A page of another origin (a single-page e-service) may read discovery and the JWKS."""
    tab = open_tab()
    tab.page.set_content("<title>another site</title>")
    issuer = stack.provider.url
    read = tab.page.evaluate(
        """async (issuer) => {
            const meta = await (await fetch(issuer + '/.well-known/openid-configuration')).json();
            const jwks = await (await fetch(meta.jwks_uri)).json();
            return {issuer: meta.issuer, kids: jwks.keys.map((k) => k.kid),
                    private: jwks.keys.some((k) => 'd' in k)};
        }""",
        issuer,
    )
    assert read["issuer"] == issuer
    assert read["kids"] and not read["private"]


def test_unknown_address_answers_not_found(stack: Stack, open_tab: Callable[..., Visit]) -> None:
    """A browser gets a page in its language; a script (fetch) gets the JSON error."""
    tab = open_tab()
    response = tab.page.goto(f"{stack.provider.url}/no-such-page")
    assert response is not None and response.status == 404
    assert tab.page.get_by_role("heading", level=1).inner_text() == "Page not found"
    tab.step("not found")
    fetched = tab.page.evaluate(
        "async (url) => { const r = await fetch(url); return [r.status, await r.text()]; }",
        f"{stack.provider.url}/no-such-page",
    )
    assert fetched[0] == 404 and json.loads(fetched[1])["error"] == "not_found"


def test_provider_cannot_be_framed(stack: Stack, open_tab: Callable[..., Visit]) -> None:
    """Clickjacking defence: another site cannot show the provider inside a frame."""
    tab = open_tab()
    tab.page.set_content(
        f'<title>framing</title><iframe title="provider" src="{stack.provider.url}/health/alive">'
        "</iframe>"
    )
    tab.page.wait_for_load_state("load")
    frame = tab.page.frames[1]
    assert "alive" not in frame.content()
