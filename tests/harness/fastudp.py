"""Builds the compiled UDP batch in place before a test session when its source is newer.

``make test`` builds it (``make ext``); a bare ``pytest`` in a fresh worktree would otherwise test
the pure-Python batch only, or skip the compiled one as stale after an edit of its C sources. With a
C compiler the tests therefore always exercise the current source; without one the compiled
batch's tests are skipped, saying why.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = REPO_ROOT / "node_dns" / "transports" / "_fastudp.c"
SOURCES = (SOURCE, SOURCE.with_name("_fastkey.c"), SOURCE.with_name("_fastkey.h"))


def built() -> Path:
    return SOURCE.with_name("_fastudp" + str(sysconfig.get_config_var("EXT_SUFFIX")))


def ensure_built() -> None:
    """Compile when the module is missing or older than its source (or setup.py); one at a time."""
    if not sys.platform.startswith("linux") or not SOURCE.is_file() or shutil.which("cc") is None:
        return
    target = built()
    newest = max(path.stat().st_mtime for path in (*SOURCES, REPO_ROOT / "setup.py") if path.exists())
    if target.exists() and target.stat().st_mtime >= newest:
        return
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    with (REPO_ROOT / "build" / ".fastudp.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and target.stat().st_mtime >= newest:
            return  # another session built it while we waited
        done = subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace", "--force"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
    if done.returncode != 0 or not target.exists():
        warnings.warn(f"the compiled UDP batch did not build: {done.stderr[-2000:]}", stacklevel=1)
