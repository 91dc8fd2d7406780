"""Regenerate migration 0001 from the models.

Until the first release the schema has a single initial migration, rewritten as the models
change. After a release, add revisions with `alembic revision --autogenerate` instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from idp.db.migrate import MIGRATIONS, alembic_config

for old in (MIGRATIONS / "versions").glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as folder:
    config = alembic_config(f"sqlite:///{Path(folder) / 'empty.db'}")
    command.revision(config, message="initial schema", autogenerate=True, rev_id="0001")
