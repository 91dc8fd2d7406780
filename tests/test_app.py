"""The provider answers from the first day: health, discovery, JWKS, and fails safely."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio import to_thread
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from idp.app import create_app
from idp.db import Database
from idp.db.engine import PING_AFTER_IDLE_SECONDS
from idp.db.migrate import upgrade
from idp.runtime import Runtime
from tests.conftest import POSTGRES_URL, PostgresSchemas, make_settings
from tests.proxy import TcpProxy


def test_alive_and_ready(client: TestClient) -> None:
    alive = client.get("/health/alive")
    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "keys": "ok"}}


def test_discovery_names_our_issuer_and_keys(client: TestClient) -> None:
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == "http://localhost:8000"
    assert metadata["jwks_uri"] == "http://localhost:8000/jwks"
    assert set(metadata["id_token_signing_alg_values_supported"]) >= {"RS256", "ES256"}
    assert response.headers["access-control-allow-origin"] == "*"


def test_jwks_publishes_public_keys_only_with_caching(client: TestClient) -> None:
    response = client.get("/jwks")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    kids = [key["kid"] for key in keys]
    assert len(kids) == len(set(kids)) >= 2
    for key in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_every_response_carries_security_headers_and_a_request_id(client: TestClient) -> None:
    response = client.get("/health/alive", headers={"X-Request-ID": "abc12345-trace"})
    assert response.headers["x-request-id"] == "abc12345-trace"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    # A malformed incoming id is replaced, never echoed.
    replaced = client.get("/health/alive", headers={"X-Request-ID": "<script>"})
    assert replaced.headers["x-request-id"] != "<script>"
    assert len(replaced.headers["x-request-id"]) == 32


def test_unknown_path_is_a_json_404(client: TestClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_https_issuer_adds_hsts(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, issuer="https://id.example.am")
    runtime = Runtime.build(settings)
    with TestClient(create_app(runtime=runtime), base_url="https://id.example.am") as http:
        response = http.get("/health/alive")
    runtime.db.dispose()
    assert response.headers["strict-transport-security"].startswith("max-age=63072000")


def test_unmigrated_database_is_not_ready(tmp_path: Path, empty_database_url: str) -> None:
    runtime = Runtime.build(make_settings(tmp_path, empty_database_url))
    with TestClient(create_app(runtime=runtime)) as http:
        response = http.get("/health/ready")
    runtime.db.dispose()
    assert response.status_code == 503
    assert "idp db upgrade" in response.json()["checks"]["database"]


@pytest.fixture
def proxied_postgres(postgres: PostgresSchemas) -> Iterator[tuple[TcpProxy, str]]:
    """PostgreSQL behind a proxy that the test can cut (SQLite is a local file: no outage)."""
    database_url = postgres.create()
    database = Database.from_url(database_url)
    upgrade(database.engine)
    database.dispose()
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    proxy.stop()
    postgres.drop(database_url)


@pytest.mark.skipif(not POSTGRES_URL, reason="needs IDP_TEST_POSTGRES_URL")
def test_database_outage_gives_quick_503s_and_service_resumes_by_itself(
    tmp_path: Path, proxied_postgres: tuple[TcpProxy, str]
) -> None:
    proxy, url = proxied_postgres
    settings = make_settings(tmp_path, url, database_connect_timeout=1)
    runtime = Runtime.build(settings)
    with TestClient(create_app(runtime=runtime)) as http:
        assert http.get("/health/ready").status_code == 200
        proxy.stop()
        started = time.monotonic()
        down = http.get("/health/ready")
        assert down.status_code == 503
        assert down.json()["checks"]["database"] == "unreachable"
        assert time.monotonic() - started < 5
        assert http.get("/.well-known/openid-configuration").status_code == 200
        # The token endpoints, whose transactions run in the event loop, fail as quickly.
        started = time.monotonic()
        refused = http.post("/introspect", data={"token": "x"}, auth=("some-e-service", "x"))
        assert refused.status_code == 503
        assert refused.json()["error"] == "temporarily_unavailable"
        assert time.monotonic() - started < 5
        proxy.start()
        assert http.get("/health/ready").status_code == 200
        answered = http.post("/introspect", data={"token": "x"}, auth=("some-e-service", "x"))
        assert answered.status_code == 401
        assert answered.json()["error"] == "invalid_client"
    runtime.db.dispose()


@pytest.mark.skipif(not POSTGRES_URL, reason="needs IDP_TEST_POSTGRES_URL")
def test_a_database_restart_while_the_provider_rests_costs_no_request(
    proxied_postgres: tuple[TcpProxy, str],
) -> None:
    """Pooled connections cut while they rest are tested and replaced before use: the first
    request after a restart succeeds (one in steady use is not tested: no extra round trip)."""
    proxy, url = proxied_postgres
    database = Database.from_url(url, pool_size=2)
    try:
        with database.transaction() as db:  # opens one pooled connection
            db.execute(text("SELECT 1"))
        proxy.stop()  # cuts it, as a database restart does
        proxy.start()
        time.sleep(PING_AFTER_IDLE_SECONDS + 0.2)
        with database.transaction() as db:
            assert db.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        database.dispose()


@pytest.mark.skipif(not POSTGRES_URL, reason="needs IDP_TEST_POSTGRES_URL")
def test_the_event_loops_connections_survive_a_database_restart_too(
    proxied_postgres: tuple[TcpProxy, str],
) -> None:
    proxy, url = proxied_postgres
    database = Database.from_url(url, pool_size=2)

    def one(db: Session) -> int:
        return int(db.execute(text("SELECT 1")).scalar_one())

    async def scenario() -> None:
        await database.start()
        try:
            assert database.async_engine is not None  # the event loop's own connections
            assert await database.run(one) == 1
            proxy.stop()
            proxy.start()
            await asyncio.sleep(PING_AFTER_IDLE_SECONDS + 0.2)
            assert await database.run(one) == 1
        finally:
            await database.stop()

    asyncio.run(scenario())
    database.dispose()


def test_requests_are_worked_on_by_as_many_threads_as_database_connections(
    tmp_path: Path, database_url: str
) -> None:
    """More request threads than connections would only wait for the pool and the interpreter."""
    settings = make_settings(tmp_path, database_url, database_pool_size=3)
    with TestClient(create_app(settings)) as http:
        assert http.get("/health/alive").status_code == 200
        tokens = http.portal.call(lambda: to_thread.current_default_thread_limiter().total_tokens)
        assert tokens == 3
