"""`bench_endpoint_base`: a benchmark's plain-http listener, advertised in discovery only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from idp.app import create_app
from idp.runtime import Runtime
from tests.conftest import make_settings


@pytest.fixture
def bench_client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path,
        database_url,
        issuer="https://idp.bench.example",
        environment="production",
        bench_endpoint_base="http://127.0.0.1:8000",
    )
    runtime = Runtime.build(settings)
    runtime.keyring.ensure_initial()
    with TestClient(create_app(runtime=runtime), base_url="http://127.0.0.1:8000") as http:
        yield http
    runtime.db.dispose()


def test_discovery_advertises_the_listener_and_keeps_the_https_issuer(
    bench_client: TestClient,
) -> None:
    metadata = bench_client.get("/.well-known/openid-configuration").json()
    assert metadata["issuer"] == "https://idp.bench.example"
    assert metadata["token_endpoint"] == "http://127.0.0.1:8000/token"
    assert metadata["jwks_uri"] == "http://127.0.0.1:8000/jwks"


def test_without_it_endpoints_are_under_the_issuer(client: TestClient) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["token_endpoint"] == f"{metadata['issuer']}/token"


@pytest.mark.parametrize(
    "value", ["https://127.0.0.1:8000", "http://bench.example:8000", "http://127.0.0.1:8000/x"]
)
def test_only_a_plain_http_loopback_base_is_accepted(
    tmp_path: Path, database_url: str, value: str
) -> None:
    with pytest.raises(ValidationError):
        make_settings(tmp_path, database_url, bench_endpoint_base=value)


def test_it_is_reported_as_unsafe(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, bench_endpoint_base="http://127.0.0.1:9")
    assert any("bench_endpoint_base" in warning for warning in settings.unsafe_defaults())
