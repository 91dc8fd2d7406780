"""Build `idp/auth/data/common-passwords.bin` from password lists (one password a line).

    python scripts/build_blocklist.py LIST [LIST ...]

A list may be plain text, `.gz`, or a `.json` array of strings. Lines that are not UTF-8 are
skipped. See `idp/auth/data/README.md` for the lists the shipped file is built from.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

from idp.auth.blocklist import DATA_FILE, build


def read(path: Path) -> list[str]:
    if path.suffix == ".json":
        return [str(item) for item in json.loads(path.read_text(encoding="utf-8"))]
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    lines = []
    for line in raw.split(b"\n"):
        try:
            text = line.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text.strip():
            lines.append(text)
    return lines


def main(paths: list[str]) -> None:
    passwords: set[str] = set()
    for name in paths:
        entries = read(Path(name))
        passwords.update(entries)
        print(f"{name}: {len(entries)} entries")
    data = build(passwords)
    DATA_FILE.write_bytes(data)
    print(f"{DATA_FILE}: {len(data)} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
