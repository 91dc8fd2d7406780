"""What the account's pages promise a citizen: an action that cannot be undone is asked for
first, "Sign out" ends the session as the provider's sign-out does, the account is one link
away from every page, and what the pages say is said in the citizen's words and language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select
from starlette.testclient import TestClient

from idp.datetimes import format_datetime
from idp.db.models import Event, SsoSession, User
from idp.runtime import Runtime
from tests.account.test_account import FIREFOX, new_browser, use_eservice
from tests.admin.conftest import Console
from tests.protocol.conftest import sign_in
from tests.signin.helpers import Citizen, add_citizen, forms

ACCOUNT_LINK = re.compile(r'<a class="idp-header__account" href="/account">([^<]+)</a>')


def _post_forms(html: str) -> set[str]:
    return {form.action for form in forms(html) if form.method == "post"}


def _warned(html: str, action: str) -> bool:
    """The page warns, and its form posting to `action` has GOV.UK's warning button."""
    start = html.index(f'action="{action}"', html.index("<main"))
    form = html[start : html.index("</form>", start)]
    return "govuk-button--warning" in form and "govuk-warning-text" in html


def _other_device(client: TestClient, runtime: Runtime, who: Citizen) -> str:
    """A session of `who` in another browser; returns its id."""
    with runtime.db.read() as db:
        user = db.get(User, who.id)
        assert user is not None
    return sign_in(new_browser(client), runtime, user)


def test_every_action_that_cannot_be_undone_is_asked_for_first(
    client: TestClient, runtime: Runtime, console: Console
) -> None:
    client.headers["user-agent"] = FIREFOX
    who = add_citizen(runtime, "gohar", email="gohar@example.am")
    client_id, _ = use_eservice(console, who, runtime)
    other = _other_device(client, runtime, who)
    history = console.get("/account/history.json").json()["entries"]
    entry = next(e for e in history if e["type"] == "signin.completed")["id"]
    actions = {
        "/account/sessions": [f"/account/sessions/{other}/end", "/account/sessions/end-all"],
        "/account/services": [f"/account/services/{client_id}/revoke"],
        "/account/history": [f"/account/history/{entry}/not-me"],
        "/account/security": ["/account/security/recovery-codes"],
    }
    for listing, irreversible in actions.items():
        page = console.get(listing)
        assert page.status_code == 200, listing
        for action in irreversible:
            # The list links to the action's own page, and does nothing by itself.
            assert f'href="{action}"' in page.text, (listing, action)
            assert action not in _post_forms(page.text), (listing, action)
            confirm = console.get(action)
            assert confirm.status_code == 200, action
            assert _warned(confirm.text, action), action
            assert f'href="{listing}"' in confirm.text  # the way back
    assert "/account/security/totp" in _post_forms(console.get("/account/security/totp").text)
    assert _warned(console.get("/account/security/totp").text, "/account/security/totp")

    # Confirmed, each still works: the other device is signed out, the e-service revoked.
    end = actions["/account/sessions"][0]
    ended = console.post_form(console.get(end), end)
    assert ended.headers["location"] == "/account/sessions?done=session"
    with runtime.db.read() as db:
        row = db.scalar(select(SsoSession).where(SsoSession.sid == other))
        assert row is not None and row.ended_at is not None
    assert "The session was signed out." in console.follow(ended).text
    revoke = actions["/account/services"][0]
    revoked = console.post_form(console.get(revoke), revoke)
    assert revoked.headers["location"] == "/account/services?done=revoked"
    assert "No e-service receives your information." in console.follow(revoked).text

    # What is gone (or another's) is a page that says so, in the citizen's language.
    for gone in (end, revoke, "/account/history/0/not-me"):
        missing = console.get(f"{gone}?lang=ru")
        assert missing.status_code == 404 and '<html lang="ru">' in missing.text


def test_sign_out_ends_the_session_as_the_providers_sign_out_does(
    client: TestClient, runtime: Runtime, console: Console
) -> None:
    who = add_citizen(runtime, "tigran", email="tigran@example.am")
    page = console.open(who, "/account/services")
    assert page.status_code == 200
    # In the account's navigation, on every page: a form to the provider's sign-out.
    nav = page.text[page.text.index('<nav aria-label="Your account"') :]
    nav = nav[: nav.index("</nav>")]
    assert 'action="/logout/confirm"' in nav and 'name="decision" value="logout"' in nav
    out = console.post_form(page, "/logout/confirm")
    assert out.status_code == 303 and out.headers["location"].startswith("/logout/done?o=")
    assert "idp_session=" in out.headers["set-cookie"]  # cleared
    done = console.follow(out)
    assert "You have signed out" in done.text and not ACCOUNT_LINK.search(done.text)
    with runtime.db.read() as db:
        live = db.scalars(
            select(SsoSession).where(SsoSession.user_id == who.id, SsoSession.ended_at.is_(None))
        ).all()
        assert live == []
        logged_out = db.scalars(select(Event).where(Event.type == "logout.completed")).all()
        assert [e.user_id for e in logged_out] == [who.id]
    assert console.get("/account").headers["location"].startswith("/login/")

    # This browser's own row on the sessions page ends the same way, after asking.
    console.open(who, "/account", step=1)
    sessions = console.get("/account/sessions")
    [here] = re.findall(r'href="(/account/sessions/[^/"]+/end)"', sessions.text)
    confirm = console.get(here)
    assert _warned(confirm.text, "/logout/confirm")
    assert (
        console.post_form(confirm, "/logout/confirm")
        .headers["location"]
        .startswith("/logout/done?o=")
    )
    assert console.get("/account").headers["location"].startswith("/login/")


@contextmanager
def _queries(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements the provider runs meanwhile."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = runtime.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_every_page_links_to_the_account_when_signed_in_without_a_query(
    client: TestClient, runtime: Runtime, console: Console
) -> None:
    browser = {"Accept": "text/html"}
    nobody = console.get("/no-such-page", headers=browser)
    assert nobody.status_code == 404 and not ACCOUNT_LINK.search(nobody.text)

    who = add_citizen(runtime, "ani", email="ani@example.am")
    console.open(who, "/account")
    with _queries(runtime) as queries:
        page = console.get("/no-such-page?lang=hy", headers=browser)
    assert page.status_code == 404 and queries == []
    assert ACCOUNT_LINK.search(page.text).group(1) == "Ձեր հաշիվը"  # type: ignore[union-attr]
    assert who.username not in page.text  # no name that is not known
    for path in ("/logout", "/account/history"):
        assert ACCOUNT_LINK.search(console.get(path).text), path


def test_levels_methods_and_uses_are_said_in_the_citizens_words(
    client: TestClient, runtime: Runtime, console: Console
) -> None:
    client.headers["user-agent"] = FIREFOX
    who = add_citizen(runtime, "armen", email="armen@example.am")
    use_eservice(console, who, runtime)
    with runtime.db.read() as db:
        signed_in = db.scalar(select(Event).where(Event.type == "signin.completed"))
        assert signed_in is not None
        at = signed_in.at
    words = {
        "en": ("Substantial", "Password, One-time code, Two-step sign-in", "You signed in"),
        "hy": ("Էական", "Գաղտնաբառ, Միանգամյա կոդ, Երկքայլ մուտք", "Դուք մուտք եք գործել"),
        "ru": ("Существенный", "Пароль, Одноразовый код, Двухэтапный вход", "Вы вошли"),
    }
    for lang, (level, methods, signed) in words.items():
        history = console.get(f"/account/history?lang={lang}").text
        assert level in history and methods in history and signed in history, lang
        when = format_datetime(at, lang, runtime.settings.zone)
        assert f">{when}<" in history, (lang, when)
        sessions = console.get(f"/account/sessions?lang={lang}").text
        assert level in sessions, lang
        for page in (history, sessions):
            text = re.sub(r"<[^>]+>", " ", page)
            jargon = re.compile(r"\b(sub|acr|amr|pwd|otp|mfa|substantial|signin\.completed)\b")
            assert not jargon.search(text), (lang, jargon.search(text))
    # The export keeps the protocol's words, for whoever reads it with a program.
    exported = console.get("/account/history.json").json()["entries"]
    released = next(e for e in exported if e["type"] == "userinfo.released")
    signin = next(e for e in exported if e["type"] == "signin.completed")
    assert "sub" in released["claims"] and "mfa" in signin["amr"]
