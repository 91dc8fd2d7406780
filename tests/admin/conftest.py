"""An administrator and a citizen, a browser that signs in through the real pages, and an
admin API caller with its token."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from idp.db.models import SsoSession
from idp.runtime import Runtime
from tests.admin.api_helpers import ApiClient, admin_client, token
from tests.signin.helpers import Citizen, add_citizen, forms


class _Fields(HTMLParser):
    """What a browser sends for the form that posts to `action`: text fields and textareas,
    hidden fields, the ticked checkboxes and radios, the chosen options."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.found = False
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.inside = values.get("action") == self.action and values.get("method") == "post"
            self.found = self.found or self.inside
        if not self.inside or ("name" not in values and tag != "option"):
            return
        kind = values.get("type", "text")
        if tag == "input" and (kind not in ("checkbox", "radio") or "checked" in values):
            self.fields.append((values["name"], values.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = values["name"], ""
        elif tag == "select":
            self._select = values["name"]
        elif tag == "option" and self._select is not None and "selected" in values:
            self.fields.append((self._select, values.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None
        elif tag == "select":
            self._select = None


CHANGE = re.compile(
    r'<dt class="govuk-summary-list__key">\s*([^<]*?)\s*</dt>\s*'
    r'<dd class="govuk-summary-list__value[^"]*">\s*<span class="idp-before">([^<]*)</span>'
    r'(?:(?!</dd>).)*?<span class="idp-after">([^<]*)</span>',
    re.S,
)


def changes_shown(html: str) -> dict[str, tuple[str, str]]:
    """The changes a page shows as fields, "before → after": {label: (before, after)}."""
    return {
        unescape(label): (unescape(before), unescape(after))
        for label, before, after in CHANGE.findall(html)
    }


def form_fields(html: str, action: str) -> list[tuple[str, str]]:
    """The fields a browser would send for the POST form to `action` on the page."""
    parser = _Fields(action)
    parser.feed(html)
    assert parser.found, f"no form to {action}"
    return parser.fields


class Console:
    """A browser on the admin console: follows redirects by hand, fills in real forms."""

    def __init__(self, client: TestClient, runtime: Runtime) -> None:
        self.client = client
        self.runtime = runtime
        client.headers["accept-language"] = "en"

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.client.get(path, follow_redirects=False, **kwargs)  # type: ignore[arg-type]

    def follow(self, response: httpx.Response, limit: int = 10) -> httpx.Response:
        while response.status_code in (302, 303) and limit:
            response = self.get(response.headers["location"])
            limit -= 1
        return response

    def post_form(
        self, page: httpx.Response, action: str, data: dict[str, str] | None = None
    ) -> httpx.Response:
        """Submit the form of `page` that posts to `action`, with its hidden fields."""
        found = [f for f in forms(page.text) if f.method == "post" and f.action == action]
        assert found, f"no form to {action} on {page.url}"
        return self.client.post(
            action, data={**found[0].fields, **(data or {})}, follow_redirects=False
        )

    def submit(
        self, page: httpx.Response, action: str, changes: dict[str, str | list[str]]
    ) -> httpx.Response:
        """Submit the form of `page` that posts to `action` as a browser would, with the
        fields of `changes` set to other values (a list: the ticked boxes of that name)."""
        sent = [(name, value) for name, value in form_fields(page.text, action)]
        sent = [(name, value) for name, value in sent if name not in changes]
        for name, value in changes.items():
            sent += [(name, v) for v in value] if isinstance(value, list) else [(name, value)]
        return self.client.post(
            action,
            content=urlencode(sent),
            headers={"content-type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )

    def confirm(self, path: str) -> httpx.Response:
        """An action that cannot be undone: its confirmation page (GET), whose one form posts
        to the same address with a warning button; then that form, sent."""
        page = self.get(path)
        assert page.status_code == 200, page.text
        found = [f for f in forms(page.text) if f.method == "post"]
        assert [f.action for f in found] == [path], found
        form = re.search(r'<form method="post".*?</form>', page.text, re.S)
        assert form is not None and "govuk-button--warning" in form.group(0)
        return self.post_form(page, path)

    def csrf(self) -> str:
        """A CSRF token of this browser (from any page with a form)."""
        page = self.get("/admin/clients/new")
        if page.status_code != 200:
            page = self.get("/admin/")
        for form in forms(page.text):
            if "csrf_token" in form.fields:
                return form.fields["csrf_token"]
        raise AssertionError("no form with a CSRF token")

    def sign_in(self, who: Citizen, response: httpx.Response, *, step: int = 0) -> httpx.Response:
        """From a redirect to the sign-in pages: password, then the one-time code."""
        assert response.status_code == 303, response.text
        login = response.headers["location"]
        assert login.startswith("/login/"), login
        page = self.get(login)
        assert page.status_code == 200, page.text
        sent = self.post_form(page, login, {"username": who.username, "password": who.password})
        assert sent.status_code == 303, sent.text
        if sent.headers["location"].endswith("/totp"):
            totp = self.get(sent.headers["location"])
            sent = self.post_form(totp, sent.headers["location"], {"code": who.code(step)})
            assert sent.status_code == 303, sent.text
        return sent

    def open(self, who: Citizen, path: str, *, step: int = 0) -> httpx.Response:
        """GET an admin page, signing in on the way if asked to."""
        response = self.get(path)
        if response.status_code == 303 and response.headers["location"].startswith("/login/"):
            response = self.follow(self.sign_in(who, response, step=step))
        return response

    def age_session(self, seconds: int) -> None:
        """Let time pass since the last sign-in (the session stays live)."""
        with self.runtime.db.transaction() as db:
            db.execute(
                update(SsoSession).values(auth_time=datetime.now(UTC) - timedelta(seconds=seconds))
            )


@pytest.fixture
def console(client: TestClient, runtime: Runtime) -> Console:
    return Console(client, runtime)


@pytest.fixture
def admin(runtime: Runtime) -> Citizen:
    person = add_citizen(runtime, "root-admin", email="admin@example.am")
    with runtime.db.transaction() as db:
        from idp.services import users as user_service

        user_service.set_admin(db, person.username, True, actor="test")
    return person


@pytest.fixture
def citizen(runtime: Runtime) -> Citizen:
    return add_citizen(runtime, "anahit")


@pytest.fixture
def api(runtime: Runtime) -> ApiClient:
    """An e-service allowed the admin scope."""
    return admin_client(runtime)


@pytest.fixture
def bearer(client: TestClient, api: ApiClient) -> dict[str, str]:
    """The Authorization header of its admin-scope access token."""
    return {"Authorization": f"Bearer {token(client, api)}"}
