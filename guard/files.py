"""Private files: everything the guard writes (audit log and its rotations, anchors, the review store and
SQLite's `-wal`/`-shm`) may hold decisions or raw held text, so it is created 0600 in directories the
guard creates 0700 (issue 15, deliver 6). Explicit modes here, not only the process umask, because the
library and middleware run inside other people's processes with their umask.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create `path` and any missing parents 0700; directories that already exist are left as they are
    (they may be shared, e.g. /var/lib)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIR_MODE)  # the umask may have taken bits we did not ask for; never adds any


def make_private(path: Path) -> None:
    """Tighten an existing file the guard owns to 0600 (one an older version created 0644)."""
    if path.exists() and path.stat().st_mode & 0o777 != FILE_MODE:
        os.chmod(path, FILE_MODE)


def open_private_append(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


def fsync_dir(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_private_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` (0600): written to a temporary file beside it, fsynced, renamed."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
