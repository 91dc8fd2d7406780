"""Shared fixtures: every database test runs on SQLite, and on PostgreSQL when
`IDP_TEST_POSTGRES_URL` names one (CI does; there an unreachable server fails the run)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from idp.app import create_app
from idp.config import Settings
from idp.db import Database
from idp.db.migrate import upgrade
from idp.db.models import Base
from idp.logging import configure_logging
from idp.runtime import Runtime

configure_logging(json=False, level="WARNING")  # logs go to stderr, never mixed with output

POSTGRES_URL = os.environ.get("IDP_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]
TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijkl"
# argon2id far cheaper than in production (a few ms a password instead of about 0.1 s): the
# tests sign in thousands of times. Production refuses these costs (tests/test_config.py).
TEST_PASSWORD_HASHING: dict[str, Any] = {
    "password_hash_memory_kib": 8192,
    "password_hash_iterations": 1,
}
TEST_PASSWORD_HASHING_ENV = {
    f"IDP_{name.upper()}": str(value) for name, value in TEST_PASSWORD_HASHING.items()
}


def pytest_sessionstart(session: pytest.Session) -> None:
    """When PostgreSQL is named, it must answer: a silent skip would hide a broken setup."""
    if POSTGRES_URL:
        engine = create_engine(_driver(POSTGRES_URL), connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            raise pytest.UsageError(
                f"IDP_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {exc}"
            ) from exc
        finally:
            engine.dispose()


def _driver(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class PostgresSchemas:
    """Each test database is a fresh schema in the test server, dropped afterwards."""

    def __init__(self, url: str) -> None:
        self.url = _driver(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT")

    def create(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        url = make_url(self.url).update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).query["options"].split("=", 1)[1]
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresSchemas | None]:
    schemas = PostgresSchemas(POSTGRES_URL) if POSTGRES_URL else None
    yield schemas
    if schemas:
        schemas.admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, postgres: PostgresSchemas | None
) -> Iterator[str]:
    """A database with no tables at all."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    assert postgres is not None
    url = postgres.create()
    yield url
    postgres.drop(url)


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate one SQLite file per run; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "idp.db"
    database = Database.from_url(f"sqlite:///{path}")
    upgrade(database.engine)
    database.dispose()
    return path


@pytest.fixture
def database_url(
    backend: str,
    tmp_path: Path,
    postgres: PostgresSchemas | None,
    _migrated_sqlite: Path,
) -> Iterator[str]:
    """A migrated, empty database of its own for one test."""
    if backend == "sqlite":
        target = tmp_path / "idp.db"
        shutil.copy(_migrated_sqlite, target)
        yield f"sqlite:///{target}"
        return
    assert postgres is not None
    url = postgres.create()
    database = Database.from_url(url)
    upgrade(database.engine)
    database.dispose()
    yield url
    postgres.drop(url)


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "issuer": "http://localhost:8000",
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "keys_dir": tmp_path / "keys",
        "secret_key": TEST_SECRET_KEY,
        **TEST_PASSWORD_HASHING,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.build(settings)
    rt.keyring.ensure_initial()
    yield rt
    rt.db.dispose()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """The provider over HTTP (httpx against the ASGI app, lifespan included)."""
    with TestClient(create_app(runtime=runtime), base_url=runtime.settings.issuer) as http:
        yield http


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the `idp` command at this test's database and folders."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"IDP_{name.upper()}", raising=False)
    monkeypatch.setenv("IDP_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("IDP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("IDP_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("IDP_SECRET_KEY", TEST_SECRET_KEY)
    for name, value in TEST_PASSWORD_HASHING_ENV.items():
        monkeypatch.setenv(name, value)
    return settings


__all__ = ["BACKENDS", "REDIS_URL", "Base", "make_settings"]
