"""Files only their owner may read: secrets, the state directory and the SQLite state.

Created with their mode, never chmod-ed afterwards: between a create with the default mode and a
chmod, anyone could open the file, and an open descriptor keeps working after the chmod.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Make `path` (and missing parents) 0700; an existing directory is left as it is."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path`, created 0600 in a 0700 directory; an existing file is replaced."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def create_private(path: Path) -> Path:
    """Create an empty `path` 0600 (in a 0700 directory) unless it exists: for files others fill
    in, such as a SQLite database, which keeps the mode it finds (and gives it to its WAL)."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass
    return path
