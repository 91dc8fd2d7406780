"""Browser fixtures.

Chromium is Debian's (`/usr/bin/chromium`), never a browser downloaded by Playwright; axe-core
comes from npm (`package.json` and `package-lock.json` here), installed on first use into
`node_modules/` beside them. Screenshots of every step go to `artifacts/screenshots/`.

Every page is checked the same way on SQLite and on PostgreSQL (each step's assertions,
axe-core, and that nothing scrolls sideways); the screenshots, to look at, are taken on SQLite.

Without Chromium (or npm) the browser tests say why and are skipped, unless
`IDP_TEST_REQUIRE_BROWSER=1` (CI), where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from idp.db import Database
from idp.db.migrate import upgrade
from tests.conftest import BACKENDS, PostgresSchemas
from tests.demo_stack import REPO, Stack, start_stack
from tests.npm import NpmUnavailable, npm_ci

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "artifacts" / "screenshots"
REQUIRED = os.environ.get("IDP_TEST_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {
    runOnly: {type: 'tag', values: tags}, resultTypes: ['violations'],
  });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' '))}));
}"""


def unavailable(reason: str) -> None:
    """Skip with the reason; in CI (IDP_TEST_REQUIRE_BROWSER=1) fail instead."""
    if REQUIRED:
        pytest.fail(f"browser tests cannot run: {reason} (IDP_TEST_REQUIRE_BROWSER=1)", False)
    pytest.skip(f"browser tests not run: {reason}")


@pytest.fixture(scope="session")
def axe_source() -> str:
    try:
        npm_ci(HERE, AXE)
    except NpmUnavailable as exc:
        unavailable(f"axe-core cannot be installed: {exc}")
    return AXE.read_text()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is missing (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresSchemas | None,
    _migrated_sqlite: Path,
) -> Iterator[Stack]:
    """The provider and both demo e-services, on SQLite and on PostgreSQL."""
    folder = tmp_path_factory.mktemp(f"stack-{request.param}")
    if request.param == "sqlite":
        shutil.copy(_migrated_sqlite, folder / "idp.db")
        url = f"sqlite:///{folder / 'idp.db'}"
    else:
        assert postgres is not None
        url = postgres.create()
        database = Database.from_url(url)
        upgrade(database.engine)
        database.dispose()
    running = start_stack(folder, url)
    yield running
    running.stop()
    if postgres is not None and request.param != "sqlite":
        postgres.drop(url)


class Visit:
    """One browser tab of a test: each `step` saves a screenshot and runs the checks."""

    def __init__(
        self, page: Any, axe_source: str, folder: Path, *, phone: bool, looked_at: bool = True
    ) -> None:
        self.page = page
        self.axe_source = axe_source
        self.folder = folder
        self.phone = phone
        self.looked_at = looked_at  # screenshots (on SQLite: see above)
        self.count = 0

    def step(self, name: str, *, accessible: bool = True) -> None:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        if self.looked_at:
            path = self.folder / f"{self.count:02d}-{slug}.png"
            self.page.screenshot(path=path, full_page=True)
        if accessible:
            violations = self.violations()
            assert not violations, f"{name}: WCAG 2.1 AA violations: {violations}"
        # Against the width asked for, not the window's: a phone's browser widens its window
        # to fit a page that is too wide, and then nothing seems to scroll sideways.
        width = self.page.viewport_size["width"]
        overflow = self.page.evaluate("document.documentElement.scrollWidth") - width
        where = "a phone" if self.phone else "a desktop"
        assert overflow <= 0, f"{name}: the page scrolls sideways on {where} ({overflow}px)"

    def violations(self) -> list[dict[str, Any]]:
        """Serious or critical WCAG 2.1 A/AA violations of the page as it is now."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(self.axe_source)
        result: list[dict[str, Any]] = self.page.evaluate(AXE_RUN, WCAG_TAGS)
        return result


@pytest.fixture
def open_tab(
    browser: Any, axe_source: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Visit]]:
    """Open a tab in a fresh browser profile (no cookies): `open_tab(phone=True)`."""
    contexts: list[Any] = []
    params = getattr(request.node, "callspec", None)
    looked_at = params is None or params.params.get("stack") != "postgresql"
    base = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")

    def open_(*, phone: bool = False, context: Any = None) -> Visit:
        if context is None:
            context = browser.new_context(**(PHONE if phone else DESKTOP), locale="en-GB")
            contexts.append(context)
        folder = base / f"tab{len(contexts)}{'-phone' if phone else ''}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return Visit(page, axe_source, folder, phone=phone, looked_at=looked_at)

    yield open_
    for context in contexts:
        context.close()
