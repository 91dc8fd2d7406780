"""Text from outside that the database must store as it came."""

from __future__ import annotations


def storable(value: str) -> bool:
    """No NUL or other control characters (tab and line breaks aside), no lone surrogates:
    what the database can store and a page can show."""
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
