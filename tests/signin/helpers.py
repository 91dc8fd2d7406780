"""A browser for the sign-in pages: real forms, real cookies, no redirects followed."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
import pyotp
from sqlalchemy import select

from idp.auth import interactions
from idp.db.models import Event, Interaction, User
from idp.mail import OutboxMailer, outbox_folder
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import users as user_service

SERVICE_NAME = "Tax service"
PASSWORD = "correct horse battery staple"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(values.get("action", ""), values.get("method", "get").lower())
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and "name" in values:
            self._current.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


@dataclass
class Citizen:
    id: int
    username: str
    password: str
    totp_secret: str | None
    email: str | None

    def code(self, offset_steps: int = 0) -> str:
        assert self.totp_secret
        return str(pyotp.TOTP(self.totp_secret).at(time.time() + 30 * offset_steps))


def add_citizen(
    runtime: Runtime,
    username: str = "anahit",
    *,
    password: str = PASSWORD,
    totp: bool = True,
    email: str | None = "anahit@example.am",
    must_change_password: bool = False,
) -> Citizen:
    secret = pyotp.random_base32(32) if totp else None
    with runtime.db.transaction() as db:
        user = user_service.create_user(
            db,
            runtime.secrets,
            user_service.NewUser(
                username=username,
                password=password,
                email=email,
                given_name="Anahit",
                family_name="Petrosyan",
                totp_secret=secret,
            ),
            actor="test",
        )
        user.must_change_password = must_change_password
        user_id = user.id
    return Citizen(user_id, username, password, secret, email)


def add_client(runtime: Runtime, name: str = SERVICE_NAME) -> str:
    with runtime.db.transaction() as db:
        registered = client_service.register_client(
            db,
            client_service.NewClient(
                name=name, redirect_uris=["https://tax.example.am/callback"], client_id="tax"
            ),
            actor="test",
        )
        return registered.client.client_id


class Browser:
    """A citizen's browser: keeps cookies, submits the forms the pages contain."""

    def __init__(self, client: httpx.Client, runtime: Runtime) -> None:
        """`client`: the app in process (a TestClient) or a real server (httpx)."""
        self.client = client
        self.runtime = runtime

    def start(
        self,
        client_id: str = "tax",
        *,
        force_login: bool = False,
        required_acr: str | None = None,
        login_hint: str | None = None,
        ui_locales: str | None = None,
    ) -> str:
        """What `/authorize` does for a request that needs the citizen: an interaction bound
        to this browser. Returns its id."""
        settings = self.runtime.settings
        with self.runtime.db.transaction() as db:
            interaction = interactions.start(
                db,
                client_id=client_id,
                params={"client_id": client_id, "scope": "openid"},
                force_login=force_login,
                required_acr=required_acr,
                login_hint=login_hint,
                ui_locales=ui_locales,
                settings=settings,
            )
            response = interactions.redirect_to_login(interaction, settings)
        for header, value in response.raw_headers:
            if header == b"set-cookie":
                name, _, rest = value.decode().partition("=")
                self.client.cookies.set(name, rest.split(";", 1)[0])
        assert response.headers["location"] == f"/login/{interaction.id}"
        return interaction.id

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, follow_redirects=False, **kwargs)

    def page(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET a page and follow redirects that stay on sign-in pages."""
        response = self.get(path, **kwargs)
        while response.status_code in (302, 303) and not _leaves(response):
            response = self.get(response.headers["location"])
        return response

    def submit(
        self, page: httpx.Response, data: dict[str, str], *, action: str | None = None
    ) -> httpx.Response:
        """Fill in the form of `page` (the first, or the one posting to `action`) and send it."""
        candidates = [f for f in forms(page.text) if f.method == "post"]
        if action is not None:
            candidates = [f for f in candidates if f.action == action]
        assert candidates, f"no form{' to ' + action if action else ''} on {page.url}"
        form = candidates[0]
        response = self.client.post(
            form.action, data={**form.fields, **data}, follow_redirects=False
        )
        assert response.status_code in (303, 403), response.text
        return response

    def follow(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code == 303
        return self.page(response.headers["location"])

    def session_cookie(self) -> str | None:
        return self.client.cookies.get("idp_session")

    def sign_in_password(self, interaction_id: str, username: str, password: str) -> httpx.Response:
        page = self.page(f"/login/{interaction_id}")
        assert page.status_code == 200, page.text
        return self.submit(page, {"username": username, "password": password})


def _leaves(response: httpx.Response) -> bool:
    location = response.headers["location"]
    return location.startswith("/authorize/") or "://" in location


def resume_location(interaction_id: str) -> str:
    return f"/authorize/resume/{interaction_id}"


def events_of(runtime: Runtime, type: str) -> list[Event]:
    with runtime.db.read() as db:
        return list(db.scalars(select(Event).where(Event.type == type).order_by(Event.id)))


def interaction_row(runtime: Runtime, interaction_id: str) -> Interaction:
    with runtime.db.read() as db:
        row = db.get(Interaction, interaction_id)
        assert row is not None
        return row


def user_row(runtime: Runtime, user_id: int) -> User:
    with runtime.db.read() as db:
        row = db.get(User, user_id)
        assert row is not None
        return row


def outbox(runtime: Runtime) -> list[dict[str, Any]]:
    return OutboxMailer(outbox_folder(runtime.settings), "").messages()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def error_text(html: str) -> str:
    """The text of the error summary of a page ('' when none)."""
    match = re.search(r'<div class="govuk-error-summary".*?</ul>', html, re.S)
    return _text(match.group(0)) if match else ""


def heading(html: str) -> str:
    """The text of the page's main heading ('' when none)."""
    match = re.search(r"<h1\b[^>]*>(.*?)</h1>", html, re.S)
    return _text(match.group(1)) if match else ""


def wrong_code(citizen: Citizen) -> str:
    """A well-formed code that is none of the citizen's codes of this moment."""
    valid = {citizen.code(step) for step in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)
