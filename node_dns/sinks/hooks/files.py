"""Writing an output file so that a reader never sees half of it.

The bytes go to a temporary file in the same directory (same filesystem, so the rename is
atomic), are fsynced, take the mode and owner of the file they replace, and are renamed over it;
then the directory is fsynced so the rename survives a crash. Only changed bytes are written:
the caller compares SHA-256 digests, which also covers a restart (the existing file is hashed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644
"""Mode of an output that did not exist: readable by a consumer running as another user."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def current_digest(path: Path) -> str | None:
    """The digest of what is on disk now, or None if there is no readable file."""
    try:
        return digest(path.read_bytes())
    except OSError:
        return None


def check_directory(path: Path) -> str | None:
    """Why ``path`` cannot be written (one phrase), or None if its directory takes new files."""
    directory = path.parent
    if not directory.is_dir():
        return f"output directory {directory} does not exist"
    if path.is_dir():
        return f"output {path} is a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"output directory {directory} is not writable"
    return None


def write_atomic(path: Path, data: bytes, sync_directory: bool = True) -> bool:
    """Replace ``path`` with ``data``; True if the previous owner could not be kept (not root).

    Raises OSError when the file cannot be written; the old file is then untouched.
    ``sync_directory=False`` leaves the directory's fsync to the caller (:func:`fsync_directory`):
    readers see the new file at the rename already; the fsync only makes the rename survive a
    crash, and hooks start the command without waiting for it.
    """
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    owner_lost = False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), stat.S_IMODE(old.st_mode) if old else NEW_FILE_MODE)
            if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(handle.fileno(), old.st_uid, old.st_gid)
                except PermissionError:
                    owner_lost = True
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if sync_directory:
        fsync_directory(path.parent)
    return owner_lost


def fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
