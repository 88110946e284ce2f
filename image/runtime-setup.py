"""Finish the runtime stage of the image with Python alone (the runtime base may have no shell).

- the user node-dns (10001:10001), appended to /etc/passwd and /etc/group;
- /opt/node-dns/bin/python-netbind: a copy of the interpreter carrying the file capability
  CAP_NET_BIND_SERVICE (effective + permitted), for the chart's edge mode, which binds port 53 as
  the non-root user. The kernel grants it only where the container's bounding set holds the
  capability (the chart adds NET_BIND_SERVICE there and nowhere else); the plain interpreter,
  which every other pod runs, carries no capability and works with all of them dropped;
- a smoke test: the installed console script starts.
"""

import os
import shutil
import struct
import subprocess

UID = GID = 10001
VENV = "/opt/node-dns"
CAP_NET_BIND_SERVICE = 10
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001


def add_user() -> None:
    with open("/etc/group", "a", encoding="utf-8") as group:
        group.write(f"node-dns:x:{GID}:\n")
    with open("/etc/passwd", "a", encoding="utf-8") as passwd:
        passwd.write(f"node-dns:x:{UID}:{GID}:node-dns:/nonexistent:/usr/sbin/nologin\n")


def add_netbind_interpreter() -> None:
    target = f"{VENV}/bin/python-netbind"
    shutil.copy2(os.path.realpath(f"{VENV}/bin/python"), target)
    # struct vfs_cap_data, revision 2: magic+flags, then (permitted, inheritable) for caps 0-31
    # and for caps 32-63.
    value = struct.pack(
        "<5I", VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, 1 << CAP_NET_BIND_SERVICE, 0, 0, 0
    )
    os.setxattr(target, "security.capability", value)


if __name__ == "__main__":
    add_user()
    add_netbind_interpreter()
    subprocess.run([f"{VENV}/bin/node-dns", "--version"], check=True)
