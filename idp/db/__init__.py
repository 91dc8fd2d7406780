"""Storage: the engine, the session factory and the models."""

from idp.db.engine import Database, DatabaseUnavailable

__all__ = ["Database", "DatabaseUnavailable"]
