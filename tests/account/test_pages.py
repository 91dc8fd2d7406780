"""What the account's pages promise a citizen: the account is one link away from every page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from starlette.testclient import TestClient

from idp.runtime import Runtime
from tests.admin.conftest import Console
from tests.signin.helpers import add_citizen

ACCOUNT_LINK = re.compile(r'<a class="idp-header__account" href="/account">([^<]+)</a>')


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
