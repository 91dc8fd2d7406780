"""Build the pages' stylesheet, scripts and icons from GOV.UK Frontend into `templates/static/`.

    python3 scripts/update_frontend.py

needs Node.js and npm (only to update: the built files are committed, so running and testing the
provider needs neither). It installs the exact versions of `frontend/package-lock.json`
(`govuk-frontend` and the `sass` compiler), compiles `frontend/idp.scss` (GOV.UK Frontend with
our own name, colours and fonts, then our own styles) and writes:

    templates/static/idp.css                      the stylesheet of every page
    templates/static/govuk/govuk-frontend.min.js  GOV.UK Frontend's components (an ES module)
    templates/static/govuk/LICENSE.txt            GOV.UK Frontend's MIT licence
    templates/static/favicon.svg, favicon.ico     our mark, drawn here

None of GOV.UK's own identity is copied: no crown, logotype, crest, icons or font.

To move to another GOV.UK Frontend version, change it in `frontend/package.json` together with
`govuk-frontend-jinja` in `pyproject.toml` (the pair its README lists as matching), run
`npm install --prefix frontend --ignore-scripts` to update the lockfile, then this script.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"
PACKAGE = FRONTEND / "node_modules" / "govuk-frontend"
STATIC = ROOT / "templates" / "static"
VENDORED = STATIC / "govuk"
BRAND = "#114b5f"  # the brand colour of frontend/idp.scss

# Our mark: a person (identity) in white on the brand colour, on a 32 x 32 grid.
MARK_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    f'<rect width="32" height="32" rx="6" fill="{BRAND}"/>'
    '<circle cx="16" cy="12" r="5" fill="#fff"/>'
    '<path d="M7 26a9 9 0 0 1 18 0z" fill="#fff"/>'
    "</svg>\n"
)
ICON_SIZES = (16, 32, 48)


def run(*command: str) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=FRONTEND, check=True)  # noqa: S603 (our own fixed commands)


def build_css() -> None:
    sass = FRONTEND / "node_modules" / ".bin" / "sass"
    run(
        str(sass),
        "--load-path=node_modules",
        "--style=compressed",
        "--no-source-map",
        "--quiet-deps",
        "idp.scss",
        str(STATIC / "idp.css"),
    )


def copy_scripts() -> None:
    VENDORED.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(
        PACKAGE / "dist" / "govuk" / "govuk-frontend.min.js",
        VENDORED / "govuk-frontend.min.js",
    )
    version = json.loads((PACKAGE / "package.json").read_text())["version"]
    notice = (FRONTEND / "LICENSE-govuk-frontend.txt").read_text()
    (VENDORED / "LICENSE.txt").write_text(f"GOV.UK Frontend {version}\n\n{notice}")


# The mark as pixels: each shape's coverage of a pixel, sampled on a fine grid.


def _inside(x: float, y: float) -> tuple[bool, bool]:
    """Whether (x, y) on the 32-grid is in the square, and in the white person."""
    corner = 6.0
    cx = min(max(x, corner), 32 - corner)
    cy = min(max(y, corner), 32 - corner)
    square = 0 <= x <= 32 and 0 <= y <= 32 and math.hypot(x - cx, y - cy) <= corner
    head = math.hypot(x - 16, y - 12) <= 5
    body = y <= 26 and math.hypot(x - 16, y - 26) <= 9
    return square, head or body


def _pixels(size: int, samples: int = 6) -> bytes:
    """RGBA rows (each preceded by PNG's filter byte 0) of the mark at `size` pixels."""
    brand = bytes.fromhex(BRAND[1:])
    rows = bytearray()
    step = 32 / size / samples
    for py in range(size):
        rows.append(0)
        for px in range(size):
            square = white = 0
            for sy in range(samples):
                for sx in range(samples):
                    x = (px * samples + sx + 0.5) * step
                    y = (py * samples + sy + 0.5) * step
                    in_square, in_white = _inside(x, y)
                    square += in_square
                    white += in_square and in_white
            total = samples * samples
            share = white / square if square else 0.0
            rgb = bytes(round(c + (255 - c) * share) for c in brand)
            rows += rgb + bytes([round(255 * square / total)])
    return bytes(rows)


def _png(size: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(_pixels(size), 9))
        + chunk(b"IEND", b"")
    )


def _ico(sizes: tuple[int, ...]) -> bytes:
    """An ICO file holding one PNG image per size (read by every current browser)."""
    images = [_png(size) for size in sizes]
    offset = 6 + 16 * len(images)
    directory = b""
    for size, image in zip(sizes, images, strict=True):
        directory += struct.pack(
            "<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(image), offset
        )
        offset += len(image)
    return struct.pack("<HHH", 0, 1, len(images)) + directory + b"".join(images)


def draw_icons() -> None:
    (STATIC / "favicon.svg").write_text(MARK_SVG)
    (STATIC / "favicon.ico").write_bytes(_ico(ICON_SIZES))


def main() -> None:
    if shutil.which("npm") is None:
        sys.exit("npm is needed to update the frontend (apt-get install npm)")
    run(
        "npm",
        "ci",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--cache",
        str(ROOT / ".cache" / "npm"),
    )
    build_css()
    copy_scripts()
    draw_icons()
    print(f"Updated {STATIC.relative_to(ROOT)}: idp.css, govuk/, favicon.svg, favicon.ico")


if __name__ == "__main__":
    main()
