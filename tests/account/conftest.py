"""A browser that signs in through the real pages (shared with the admin tests)."""

from tests.admin.conftest import admin, console

__all__ = ["admin", "console"]
