"""The admin console fixtures (an administrator, a browser that signs in)."""

from tests.admin.conftest import admin, console

__all__ = ["admin", "console"]
