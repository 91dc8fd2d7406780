"""Installing the tests' npm packages from their committed lockfiles, once, even when several
test processes ask at the same time."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class NpmUnavailable(Exception):
    """npm is missing or `npm ci` failed; the message says why."""


def npm_ci(folder: Path, marker: Path) -> None:
    """Run `npm ci` in `folder` unless `marker` (a file the install creates) exists."""
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise NpmUnavailable("npm is missing")
    with open(folder / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():  # another process installed it while we waited
            return
        done = subprocess.run(
            [
                npm,
                "ci",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--cache",
                str(REPO / ".cache" / "npm"),
            ],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if done.returncode != 0 or not marker.exists():
            raise NpmUnavailable(f"`npm ci` in {folder.name} failed: {done.stderr.strip()[-500:]}")
