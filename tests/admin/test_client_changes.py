"""Administrators change what they registered (`PATCH /admin/api/v1/clients/{client_id}`, a
JSON merge patch, and `idp clients update`): the change is checked by the rules of
registration, audited field by field, and the e-service's new metadata is what `/authorize`
and `/token` apply from then on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from idp.background import run_now
from idp.cli import main
from idp.config import Settings
from idp.db.models import Client, Event, User
from idp.runtime import Runtime
from idp.services import Conflict
from idp.services import clients as client_service
from tests.admin.conftest import Console, changes_shown
from tests.conftest import make_settings
from tests.hosts import Documents
from tests.protocol.conftest import (
    EService,
    Flow,
    authorize,
    get_code,
    make_citizen,
    redeem,
    register,
    sign_in,
    tokens_for,
)
from tests.protocol.test_authorize import assert_error_page
from tests.signin.helpers import Citizen

API = "/admin/api/v1"
TAX = "https://tax.example.am/callback"
CUSTOMS = "https://customs.example.am/callback"
LAND = "https://land.example.am/callback"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The provider may fetch from this machine (the sector documents are served on loopback)."""
    return make_settings(tmp_path, database_url, client_fetch_private_addresses=True)


@pytest.fixture
def documents() -> Iterator[Documents]:
    server = Documents()
    server.publish("/sector.json", [TAX, CUSTOMS])
    yield server
    server.close()


@pytest.fixture
def service(runtime: Runtime) -> EService:
    return register(
        runtime,
        client_id="tax",
        redirect_uris=[TAX],
        first_party=True,
        logo_uri="https://tax.example.am/logo.png",
        contacts=["it@tax.example.am"],
    )


@pytest.fixture
def citizen(runtime: Runtime) -> User:
    return make_citizen(runtime)


def patch(
    http: TestClient, client_id: str, body: Any, headers: dict[str, str], **options: Any
) -> Any:
    return http.patch(
        f"{API}/clients/{client_id}",
        content=json.dumps(body).encode(),
        headers={**MERGE_PATCH, **headers},
        **options,
    )


def stored(runtime: Runtime, client_id: str = "tax") -> dict[str, Any]:
    with runtime.db.read() as db:
        return client_service.describe(client_service.get_client(db, client_id))


def updates(runtime: Runtime) -> list[Event]:
    with runtime.db.read() as db:
        query = select(Event).where(Event.type == "admin.client_updated").order_by(Event.id)
        return list(db.scalars(query))


# The admin API ----------------------------------------------------------------------------------


def test_a_merge_patch_changes_only_the_members_it_names(
    client: TestClient, runtime: Runtime, service: EService, bearer: dict[str, str]
) -> None:
    before = stored(runtime)
    answer = patch(
        client,
        "tax",
        {"name": "Tax office", "logo_uri": None, "contacts": ["help@tax.example.am"]},
        bearer,
    )
    assert answer.status_code == 200, answer.text
    after = answer.json()
    assert after["name"] == "Tax office"
    assert after["logo_uri"] is None  # null clears
    assert after["contacts"] == ["help@tax.example.am"]  # a list is replaced
    kept = set(before) - {"name", "logo_uri", "contacts"}
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    assert stored(runtime) == after
    # Plain application/json is taken too; an empty patch changes nothing and records nothing.
    plain = client.patch(f"{API}/clients/tax", json={}, headers=bearer)
    assert plain.status_code == 200 and plain.json() == after
    assert len(updates(runtime)) == 1


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"client_id": "other"}, 400, "client_id: Extra inputs are not permitted"),
        ({"colour": "red"}, 400, "colour: Extra inputs are not permitted"),
        ({"name": None}, 400, "name: Input should be a valid string"),
        ({"grant_types": []}, 400, "grant_types: List should have at least 1 item"),
        ({"redirect_uris": ["https://tax.example.am/cb#x"]}, 400, "fragment"),
        ({"redirect_uris": None}, 400, "at least one redirect URI is required"),
        ({"auth_method": "private_key_jwt"}, 400, "private_key_jwt requires"),
        ({"scope": "openid national_id"}, 400, "scope 'national_id' is restricted"),
        ({"scope": "openid profile", "allowed_claims": ["email"]}, 400, "needs the scope 'email'"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, 400, "RSA, EC or OKP"),
        ({"subject_type": "pairwise", "redirect_uris": [TAX, CUSTOMS]}, 400, "several hosts"),
    ],
)
def test_a_bad_change_is_refused_and_nothing_is_written(
    client: TestClient,
    runtime: Runtime,
    service: EService,
    bearer: dict[str, str],
    body: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    before = stored(runtime)
    answer = patch(client, "tax", {"name": "Tax office", **body}, bearer)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] in ("invalid_request", "invalid_input")
    assert reason in answer.json()["error_description"]
    assert stored(runtime) == before
    assert updates(runtime) == []


def test_only_an_administrator_changes_an_e_service(
    client: TestClient, runtime: Runtime, service: EService, documents: Documents
) -> None:
    """The caller is checked before the body is read: nothing it sent is parsed or fetched."""
    change = {"sector_identifier_uri": documents.url("/sector.json"), "subject_type": "pairwise"}
    for headers in ({}, {"Authorization": "Bearer made-up"}):
        answer = patch(client, "tax", change, headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        garbage = client.patch(
            f"{API}/clients/tax", content=b"{not json", headers={**MERGE_PATCH, **headers}
        )
        assert garbage.status_code == 401
    assert documents.hits == {}
    assert updates(runtime) == []


def test_an_unknown_e_service_is_not_found(client: TestClient, bearer: dict[str, str]) -> None:
    answer = patch(client, "nope", {"name": "X"}, bearer)
    assert answer.status_code == 404
    assert answer.json()["error_description"] == "no client 'nope'"


# The audit --------------------------------------------------------------------------------------


def test_the_audit_shows_each_changed_field_before_and_after(
    client: TestClient,
    runtime: Runtime,
    service: EService,
    bearer: dict[str, str],
    console: Console,
    admin: Citizen,
) -> None:
    answer = patch(
        client,
        "tax",
        {"name": "Tax office", "logo_uri": None, "redirect_uris": [TAX, LAND]},
        bearer,
    )
    assert answer.status_code == 200, answer.text
    found = client.get(
        f"{API}/audit", params={"type": "admin.client_updated", "client_id": "tax"}, headers=bearer
    ).json()
    [entry] = found["items"]
    assert entry["actor"] == "api:ops-console"
    assert entry["data"] == {
        "changes": {
            "name": {"before": "Tax service", "after": "Tax office"},
            "logo_uri": {"before": "https://tax.example.am/logo.png", "after": None},
            "redirect_uris": {"before": [TAX], "after": [TAX, LAND]},
        }
    }
    # The console's audit page shows the same, as fields: "before → after".
    page = console.open(admin, "/admin/audit?type=admin.client_updated&lang=en")
    assert page.status_code == 200
    assert "admin.client_updated" in page.text
    assert changes_shown(page.text) == {
        "Name": ("Tax service", "Tax office"),
        "Logo URL": ("https://tax.example.am/logo.png", "none"),
        "Redirect URIs": (TAX, f"{TAX}, {LAND}"),
    }
    assert "&#34;before&#34;" not in page.text  # not the stored JSON


# What the e-service may do afterwards ----------------------------------------------------------


def test_a_new_redirect_uri_is_accepted_and_the_removed_one_refused(
    client: TestClient,
    runtime: Runtime,
    service: EService,
    citizen: User,
    bearer: dict[str, str],
) -> None:
    sign_in(client, runtime, citizen)
    assert get_code(client, Flow.new(service))  # the e-service is now in this process's cache
    answer = patch(client, "tax", {"redirect_uris": [LAND]}, bearer)
    assert answer.status_code == 200, answer.text
    assert_error_page(authorize(client, Flow.new(service)))
    moved = EService(service.client_id, service.secret, LAND)
    flow = Flow.new(moved)
    redeemed = redeem(client, flow, get_code(client, flow))
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["id_token"]


def test_the_token_endpoint_applies_a_new_auth_method(
    client: TestClient,
    runtime: Runtime,
    service: EService,
    citizen: User,
    bearer: dict[str, str],
) -> None:
    """Between two secret-based methods the secret stays; away from them it is gone; a move
    back gives no secret until rotate-secret issues one."""
    sign_in(client, runtime, citizen)
    flow = Flow.new(service)
    code = get_code(client, flow)
    answer = patch(client, "tax", {"auth_method": "client_secret_post"}, bearer)
    assert answer.status_code == 200 and answer.json()["has_secret"] is True
    basic = redeem(client, flow, code)
    assert (basic.status_code, basic.json()["error"]) == (401, "invalid_client")
    flow = Flow.new(service)
    assert service.secret
    posted = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": get_code(client, flow),
            "redirect_uri": TAX,
            "code_verifier": flow.verifier,
            "client_id": "tax",
            "client_secret": service.secret,
        },
    )
    assert posted.status_code == 200, posted.text

    keys = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "tax-1", **EC_POINT}]}
    moved = patch(client, "tax", {"auth_method": "private_key_jwt", "jwks": keys}, bearer)
    assert moved.status_code == 200, moved.text
    assert moved.json()["has_secret"] is False
    [*_, event] = updates(runtime)
    assert event.data["secret_removed"] is True
    assert event.data["changes"]["jwks"]["after"][0]["kid"] == "tax-1"
    assert EC_POINT["x"] not in json.dumps(event.data)
    with runtime.db.read() as db:
        row = db.scalar(select(Client).where(Client.client_id == "tax"))
        assert row is not None and row.secret_hash is None

    back = patch(client, "tax", {"auth_method": "client_secret_basic", "jwks": None}, bearer)
    assert back.status_code == 200, back.text
    assert back.json()["has_secret"] is False and "client_secret" not in back.json()
    flow = Flow.new(service)
    refused = redeem(client, flow, get_code(client, flow))
    assert refused.status_code == 401  # the old secret came back with nothing
    secret = client.post(f"{API}/clients/tax/rotate-secret", headers=bearer).json()
    fresh = EService("tax", secret["client_secret"], TAX)
    flow = Flow.new(fresh)
    assert redeem(client, flow, get_code(client, flow)).status_code == 200


EC_POINT = {
    "x": "I1zNuf7lpd0-pBND5jUHcSVAJ20GEwoFYMJ4Y4PWZZQ",
    "y": "r_n6Umo_Z2Z-tb_etIEBJXjaSeW33xgA5JvqxIeKb_M",
}


def test_a_move_to_a_public_client_revokes_what_its_secret_protected(
    client: TestClient,
    runtime: Runtime,
    service: EService,
    citizen: User,
    bearer: dict[str, str],
) -> None:
    """A refresh token needed the e-service's secret; a public client needs none, so the
    tokens issued before do not survive the change."""
    sign_in(client, runtime, citizen)
    held = tokens_for(client, Flow.new(service, scope="openid profile offline_access"))
    answer = patch(client, "tax", {"auth_method": "none"}, bearer)
    assert answer.status_code == 200, answer.text
    refreshed = client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": held["refresh_token"],
            "client_id": "tax",
        },
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    [event] = updates(runtime)
    assert event.data["grants_revoked"] == 1 and event.data["secret_removed"] is True


def test_a_change_from_the_command_line_is_seen_at_once(
    capsys: pytest.CaptureFixture[str],
    cli_env: Settings,
    client: TestClient,
    runtime: Runtime,
    service: EService,
    citizen: User,
) -> None:
    """In the process that made it at once, like disabling; other processes within
    `client_cache_seconds`."""
    sign_in(client, runtime, citizen)
    assert get_code(client, Flow.new(service))  # the e-service is now in this process's cache
    assert main(["clients", "update", "tax", "--redirect-uri", LAND, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["redirect_uris"] == [LAND]
    assert_error_page(authorize(client, Flow.new(service)))
    assert get_code(client, Flow.new(EService("tax", service.secret, LAND)))


# The sector identifier URI is fetched again -----------------------------------------------------


def test_new_redirect_uris_are_checked_against_the_sector_document_again(
    client: TestClient, runtime: Runtime, bearer: dict[str, str], documents: Documents
) -> None:
    sector = documents.url("/sector.json")
    new = client_service.NewClient(
        name="Revenue",
        client_id="revenue",
        redirect_uris=[TAX, CUSTOMS],
        subject_type="pairwise",
        sector_identifier_uri=sector,
    )
    checked = run_now(client_service.check_client(new, runtime.settings))
    with runtime.db.transaction() as db:
        client_service.register_client(db, checked, actor="test")
    assert documents.hits == {"/sector.json": 1}
    renamed = patch(client, "revenue", {"name": "Revenue committee"}, bearer)
    assert renamed.status_code == 200
    assert documents.hits == {"/sector.json": 1}  # nothing to vouch for again
    added = {"redirect_uris": [TAX, CUSTOMS, LAND]}
    refused = patch(client, "revenue", added, bearer)
    assert refused.status_code == 400
    assert refused.json()["error_description"] == (
        f"sector identifier URI '{sector}' does not list redirect URI '{LAND}'"
    )
    assert documents.hits == {"/sector.json": 2}
    assert stored(runtime, "revenue")["redirect_uris"] == [TAX, CUSTOMS]
    documents.publish("/sector.json", [TAX, CUSTOMS, LAND])
    accepted = patch(client, "revenue", added, bearer)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["redirect_uris"] == [TAX, CUSTOMS, LAND]
    assert documents.hits == {"/sector.json": 3}
    # Another document is fetched when the URI changes; one that cannot vouch is refused.
    documents.publish("/other.json", [TAX])
    moved = patch(
        client, "revenue", {"sector_identifier_uri": documents.url("/other.json")}, bearer
    )
    assert moved.status_code == 400 and documents.hits["/other.json"] == 1
    assert stored(runtime, "revenue")["sector_identifier_uri"] == sector


def test_the_command_line_fetches_the_sector_document_again(
    capsys: pytest.CaptureFixture[str],
    cli_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    runtime: Runtime,
    documents: Documents,
) -> None:
    monkeypatch.setenv("IDP_CLIENT_FETCH_PRIVATE_ADDRESSES", "true")
    sector = documents.url("/sector.json")
    create = ["clients", "create", "--name", "Revenue", "--client-id", "revenue"]
    pairwise = ["--subject-type", "pairwise", "--sector-identifier-uri", sector]
    assert main([*create, "--redirect-uri", TAX, *pairwise]) == 0
    capsys.readouterr()
    code = main(["clients", "update", "revenue", "--redirect-uri", TAX, "--redirect-uri", LAND])
    assert code == 1
    assert capsys.readouterr().err == (
        f"error: sector identifier URI '{sector}' does not list redirect URI '{LAND}'\n"
    )
    assert documents.hits == {"/sector.json": 2}
    assert stored(runtime, "revenue")["redirect_uris"] == [TAX]
    assert main(["clients", "update", "revenue", "--redirect-uri", CUSTOMS]) == 0
    assert documents.hits == {"/sector.json": 3}
    assert stored(runtime, "revenue")["redirect_uris"] == [CUSTOMS]


def test_a_change_checked_against_an_older_state_is_applied_to_the_current_one(
    runtime: Runtime, service: EService, documents: Documents
) -> None:
    """Two administrators at once: a change made meanwhile to another field stays; if what the
    sector document vouched for no longer applies, the change is refused (send it again)."""
    with runtime.db.read() as db:
        seen = client_service.get_client(db, "tax")
    renamed = run_now(
        client_service.check_client(
            client_service.ClientChanges({"name": "Tax office"}), runtime.settings, current=seen
        )
    )
    with runtime.db.transaction() as db:
        client_service.update_client(
            db, "tax", client_service.ClientChanges({"contacts": ["a@tax.am"]}), actor="other"
        )
    with runtime.db.transaction() as db:
        client_service.update_client(db, "tax", renamed, actor="test")
    now = stored(runtime)
    assert now["name"] == "Tax office" and now["contacts"] == ["a@tax.am"]

    documents.publish("/tax.json", [TAX, LAND])
    sector = {"sector_identifier_uri": documents.url("/tax.json"), "subject_type": "pairwise"}
    with runtime.db.read() as db:
        seen = client_service.get_client(db, "tax")
    vouched = run_now(
        client_service.check_client(
            client_service.ClientChanges(sector), runtime.settings, current=seen
        )
    )
    with runtime.db.transaction() as db:  # meanwhile, another redirect URI
        client_service.update_client(
            db, "tax", client_service.ClientChanges({"redirect_uris": [LAND]}), actor="other"
        )
    refused = pytest.raises(Conflict, match="was not checked for this change")
    with refused, runtime.db.transaction() as db:
        client_service.update_client(db, "tax", vouched, actor="test")
    assert stored(runtime)["sector_identifier_uri"] is None
