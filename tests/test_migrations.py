"""The schema comes from migrations, and migrations agree with the models, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from idp.db import Database
from idp.db.migrate import current_revision, head_revision, is_up_to_date, upgrade
from idp.db.models import Base


def test_upgrade_from_empty_creates_every_table(empty_database_url: str) -> None:
    database = Database.from_url(empty_database_url)
    try:
        assert current_revision(database.engine) is None
        assert not is_up_to_date(database.engine)
        upgrade(database.engine)
        assert current_revision(database.engine) == head_revision()
        tables = set(inspect(database.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        upgrade(database.engine)  # running it again changes nothing
        assert is_up_to_date(database.engine)
    finally:
        database.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    database = Database.from_url(database_url)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == [], f"run `make migration`: {differences}"
    finally:
        database.dispose()
