"""Enter a mounted image root and exec a command the way runc starts a container's process.

    python -m tests.harness.enter_image ROOT UID GID CAPS -- ARGV...

Runs as root inside a private mount namespace (tests/harness/image.py sets that up), then, in
runc's order: ``chroot`` into ROOT; drop every capability but CAPS (comma separated names, e.g.
``net_bind_service``, or empty) from the bounding set; switch to UID:GID keeping capabilities;
set the permitted and effective sets to CAPS (what a runtime does for a pod's
``capabilities.add``); set ``no_new_privs`` (the pod's ``allowPrivilegeEscalation: false``); exec
ARGV. As with a real runtime, a non-root process keeps CAPS only through a file capability: an
ordinary binary starts with none.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAPABILITIES = {"chown": 0, "net_bind_service": 10, "net_raw": 13, "sys_chroot": 18}


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def enter(root: str, uid: int, gid: int, caps: list[int], argv: list[str]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/sys/kernel/cap_last_cap") as last:
        last_cap = int(last.read())
    os.chroot(root)
    os.chdir("/")
    for cap in range(last_cap + 1):
        if cap not in caps:
            _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap} from the bounding set")
    _check(libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "keep capabilities across the uid change")
    os.setgroups([gid])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    mask = [0, 0]
    for cap in caps:
        mask[cap // 32] |= 1 << (cap % 32)
    header = _Header(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)(*[_Data(m, m, 0) for m in mask])
    _check(libc.capset(ctypes.byref(header), data), "set the permitted and effective capabilities")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")
    os.execvp(argv[0], argv)  # PATH: the image's, from the environment


def main() -> None:
    root, uid, gid, names, separator, *argv = sys.argv[1:]
    if separator != "--" or not argv:
        sys.exit("usage: python -m tests.harness.enter_image ROOT UID GID CAPS -- ARGV...")
    caps = [CAPABILITIES[name] for name in names.split(",") if name]
    enter(root, int(uid), int(gid), caps, argv)


if __name__ == "__main__":
    main()
