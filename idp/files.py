"""Files and folders that only the provider's own user may read: the embedded database (and
its write-ahead log), signing keys, the generated development secret, the mail outbox.

A folder the provider makes is 0700 and a file 0600, whatever the process's umask. An existing
folder keeps its mode (an operator may share it on purpose); an existing file of ours loses any
permission for group and others, with a warning when that cannot be done.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from idp.logging import get_logger

log = get_logger("idp.files")
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """`path`, made (with any missing parent) if it does not exist, readable by the owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """`path` as an owner-only file: made empty with mode 0600 if missing, else `restrict`ed."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        restrict(path)
    return path


def restrict(path: Path) -> None:
    """Take group's and others' permissions from an existing file (nothing if it is missing)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    except FileNotFoundError:
        return
    except OSError as exc:  # another user's file, a read-only mount: theirs to fix
        log.warning("file readable by others", path=str(path), error=str(exc))
