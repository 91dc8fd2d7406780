"""One-time codes of digits (authenticator app, email) as people type them.

Spaces and dashes are ignored ("123 456", "123-456"). Anything else that is not a digit, or a
wrong number of digits, cannot be a code at all: the sign-in pages tell it apart from a wrong
code, because it is a typing mistake rather than a guess, and neither count it against the
account nor record it as a failed attempt.
"""

from __future__ import annotations

import re


def compact(code: str) -> str:
    """The code without the spaces and dashes people type between its digits."""
    return re.sub(r"[\s-]", "", code)


def is_digits(code: str, length: int) -> bool:
    """Whether `code` is `length` digits 0-9, spaces and dashes aside."""
    typed = compact(code)
    return len(typed) == length and typed.isascii() and typed.isdigit()
