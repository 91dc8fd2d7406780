"""The pieces the protocol builds on: assurance levels and single-use interactions."""

from __future__ import annotations

from idp.auth import assurance, interactions
from idp.runtime import Runtime
from tests.signin.helpers import Browser


def test_assurance_levels() -> None:
    assert assurance.acr_for_amr(["pwd"]) == "low"
    assert assurance.acr_for_amr(["pwd", "otp", "mfa"]) == "substantial"
    assert assurance.acr_for_amr(["otp"]) == "low"
    assert assurance.satisfies("substantial", "low")
    assert assurance.satisfies("low", None)
    assert not assurance.satisfies("low", "substantial")
    assert not assurance.satisfies("substantial", "high")
    assert not assurance.satisfies("substantial", "unknown")
    assert assurance.amr_with(["pwd"], "otp") == ["pwd", "otp", "mfa"]


def test_an_interaction_is_bound_to_its_browser_and_completed_once(
    browser: Browser, runtime: Runtime
) -> None:
    interaction_id = browser.start()
    assert browser.page(f"/login/{interaction_id}").status_code == 200
    # Another browser (no binding cookie) cannot use it.
    browser.client.cookies.clear()
    assert browser.page(f"/login/{interaction_id}").status_code == 400
    with runtime.db.transaction() as db:
        interaction = db.get(interactions.Interaction, interaction_id)
        assert interaction is not None
        assert interactions.complete(db, interaction)
        assert not interactions.complete(db, interaction)


def test_an_unknown_interaction_gets_a_friendly_page(browser: Browser) -> None:
    page = browser.page("/login/no-such-interaction")
    assert page.status_code == 400
    assert '<html lang="hy">' in page.text
