"""Discovery and JWKS: prebuilt bytes with a strong ETag, 304 when unchanged, never stale."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from idp.app import create_app
from idp.cli import main
from idp.config import Settings
from idp.runtime import Runtime
from idp.services import keys as key_service
from tests.conftest import make_settings

DOCUMENTS = ["/.well-known/openid-configuration", "/jwks"]


@pytest.mark.parametrize("path", DOCUMENTS)
def test_a_document_has_a_stable_strong_etag_and_answers_304_when_unchanged(
    client: TestClient, path: str
) -> None:
    first = client.get(path)
    second = client.get(path)
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong: not W/"..."
    assert second.headers["etag"] == etag and second.content == first.content
    assert first.headers["cache-control"] == "public, max-age=300"
    assert first.headers["content-length"] == str(len(first.content))

    unchanged = client.get(path, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert unchanged.headers["cache-control"] == "public, max-age=300"
    assert unchanged.headers["access-control-allow-origin"] == "*"
    assert unchanged.headers["x-content-type-options"] == "nosniff"  # still every header
    # One of several, or the weak form of the same tag, also matches; another tag does not.
    assert client.get(path, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    other = client.get(path, headers={"If-None-Match": '"an-older-version"'})
    assert other.status_code == 200 and other.content == first.content


@pytest.mark.parametrize("path", DOCUMENTS)
def test_head_answers_the_headers_of_get_without_the_body(client: TestClient, path: str) -> None:
    full = client.get(path)
    head = client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == full.headers["etag"]
    assert head.headers["content-length"] == str(len(full.content))
    assert head.headers["content-type"] == full.headers["content-type"]


def test_a_rotation_by_the_cli_changes_the_jwks_and_its_etag(
    client: TestClient, runtime: Runtime, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    before = client.get("/jwks")
    assert main(["keys", "rotate", "--alg", "ES256", "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    runtime.keyring.refresh(interval=0)  # what the next one-second check does
    after = client.get("/jwks", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert rotated["kid"] in [key["kid"] for key in after.json()["keys"]]
    assert after.headers["etag"] != before.headers["etag"]
    assert client.get("/jwks", headers={"If-None-Match": after.headers["etag"]}).status_code == 304


@pytest.fixture
def quick_keys(tmp_path: Path, database_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    """A provider whose rotated-in keys start signing three seconds after they are published."""
    settings = make_settings(tmp_path, database_url, key_activation_delay=3, jwks_max_age=3)
    runtime = Runtime.build(settings)
    runtime.keyring.ensure_initial()
    with TestClient(create_app(runtime=runtime), base_url=settings.issuer) as http:
        yield http, runtime
    runtime.db.dispose()


def test_discovery_follows_a_key_that_starts_signing_with_no_change_to_the_folder(
    quick_keys: tuple[TestClient, Runtime],
) -> None:
    client, runtime = quick_keys
    path = "/.well-known/openid-configuration"
    assert "EdDSA" not in client.get(path).json()["id_token_signing_alg_values_supported"]
    with runtime.db.transaction() as session:
        rotated = key_service.rotate_key(
            session, runtime.keyring, runtime.settings, "EdDSA", actor="test"
        )
    assert rotated.status == "next"
    published = client.get(path)
    assert "EdDSA" not in published.json()["id_token_signing_alg_values_supported"]
    assert rotated.key.kid in [key["kid"] for key in client.get("/jwks").json()["keys"]]
    # The key activates: only the clock moves, the folder stays as it is.
    time.sleep(max(0.0, (rotated.key.activates_at - datetime.now(UTC)).total_seconds()) + 0.1)
    signing = client.get(path, headers={"If-None-Match": published.headers["etag"]})
    assert signing.status_code == 200
    assert "EdDSA" in signing.json()["id_token_signing_alg_values_supported"]
    assert signing.headers["etag"] != published.headers["etag"]
