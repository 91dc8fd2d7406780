"""JSON that comes from outside: parsed only within a size and a nesting depth.

Every JSON document a request carries (a registration, an admin API body, the `claims`
parameter, a client assertion's payload) is parsed here. The nesting is counted before the
parser sees the text: Python's parser recurses once per level, so a few kilobytes of `[`
would otherwise end in a `RecursionError` instead of a clear refusal.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 16
_STRUCTURE = re.compile(r'[\[\]{}"\\]')


class JsonInputError(ValueError):
    """Not JSON we accept: too large, nested too deeply, or not JSON at all. The message is
    what the text is, to follow "The body is ..." in an error description."""


def parse_json(data: bytes | str, *, max_size: int, max_depth: int = MAX_DEPTH) -> Any:
    """The value `data` holds (UTF-8 JSON, at most `max_size` bytes and `max_depth` levels of
    arrays and objects), or `JsonInputError`."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_size:
        raise JsonInputError(f"larger than {max_size} bytes")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise JsonInputError("not valid UTF-8") from None
    if _depth(text, max_depth) > max_depth:
        raise JsonInputError(f"nested more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except ValueError:
        raise JsonInputError("not valid JSON") from None


def _depth(text: str, limit: int) -> int:
    """How deep the arrays and objects of `text` nest (counting stops past `limit`). Only the
    characters that matter are visited: brackets, and the quotes and backslashes that say
    whether a bracket is inside a string."""
    depth = deepest = 0
    in_string = False
    escaped_at = -1
    for match in _STRUCTURE.finditer(text):
        position = match.start()
        if position == escaped_at:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                escaped_at = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif char in "]}":
            depth -= 1
    return deepest
