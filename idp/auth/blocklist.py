"""Common and breached passwords, shipped with the product for offline use.

The list (about 1.2 million entries, see `data/README.md`) is kept in memory as a few megabytes
of zlib-compressed blocks of sorted entries, with the first entry of each block as an index: a
lookup decompresses one block of a few kilobytes. The comparison is exact (no false positives),
on the whole password, after NFKC normalisation and case folding. Loaded once per process, on
first use.
"""

from __future__ import annotations

import struct
import threading
import unicodedata
import zlib
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "common-passwords.bin"
MAGIC = b"IDPPWBL1"
HEADER = struct.Struct(">8sIII")  # magic, entries, blocks, size of the compressed index


def blocklist_key(password: str) -> str:
    """The form in which passwords are compared: NFKC, case-folded (then NFKC again, as case
    folding can leave a string that is not in normal form)."""
    folded = unicodedata.normalize("NFKC", password).casefold()
    return unicodedata.normalize("NFKC", folded)


@dataclass(frozen=True)
class Blocklist:
    """Sorted entries in compressed blocks; `first_keys[i]` is the first entry of block i."""

    entries: int
    first_keys: list[bytes]
    offsets: tuple[int, ...]
    blob: memoryview

    @classmethod
    def load(cls, path: Path = DATA_FILE) -> Blocklist:
        data = path.read_bytes()
        magic, entries, blocks, index_size = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise ValueError(f"{path} is not a password blocklist")
        position = HEADER.size
        offsets = struct.unpack_from(f">{blocks + 1}I", data, position)
        position += 4 * (blocks + 1)
        first_keys = zlib.decompress(data[position : position + index_size]).split(b"\n")
        position += index_size
        if len(first_keys) != blocks or offsets[-1] != len(data) - position:
            raise ValueError(f"{path} is damaged")
        return cls(entries, first_keys, offsets, memoryview(data)[position:])

    def __contains__(self, password: str) -> bool:
        key = blocklist_key(password).encode()
        block = bisect_right(self.first_keys, key) - 1
        if block < 0:
            return False
        chunk = self.blob[self.offsets[block] : self.offsets[block + 1]]
        items = zlib.decompress(chunk).split(b"\n")
        found = bisect_left(items, key)
        return found < len(items) and items[found] == key

    def __len__(self) -> int:
        return self.entries


def build(passwords: set[str], *, block_size: int = 256) -> bytes:
    """The data file for a set of passwords (used by `scripts/build_blocklist.py`)."""
    keys = sorted({blocklist_key(p).encode() for p in passwords if p} - {b""})
    if any(b"\n" in key for key in keys):
        raise ValueError("passwords must not contain line breaks")
    blocks = [
        zlib.compress(b"\n".join(keys[i : i + block_size]), 9)
        for i in range(0, len(keys), block_size)
    ]
    offsets = [0]
    for block in blocks:
        offsets.append(offsets[-1] + len(block))
    index = zlib.compress(b"\n".join(keys[i] for i in range(0, len(keys), block_size)), 9)
    return b"".join(
        [
            HEADER.pack(MAGIC, len(keys), len(blocks), len(index)),
            struct.pack(f">{len(offsets)}I", *offsets),
            index,
            *blocks,
        ]
    )


_lock = threading.Lock()
_loaded: Blocklist | None = None


def blocklist() -> Blocklist:
    """The shipped list, loaded on first use."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = Blocklist.load()
    return _loaded


def is_blocked(password: str) -> bool:
    """Whether the whole password (NFKC, any case) is a known common or breached password."""
    return password in blocklist()
