"""Network namespaces made by tests: a node's interfaces without touching the host's.

A :class:`Netns` is a fresh network namespace with its own loopback. Interfaces inside it are
veth pairs (the ``dummy`` link type is not available on every machine, veth is): both ends live
in the namespace, so addresses given to them are reachable from nowhere else. One extra veth
pair, the :class:`Uplink`, joins the namespace to the host on a link-local /30, and a
:class:`TcpRelay` on the host end forwards one port to a loopback service (the test apiserver
binds 127.0.0.1), so a process run inside the namespace can reach it and nothing else.

Needs root (``ip netns``). Everything is removed on :meth:`Netns.delete`: deleting the namespace
deletes its interfaces and the host end of each pair with them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import socket
import subprocess
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self


class NetnsError(RuntimeError):
    """An ``ip`` command failed; carries its stderr."""


def ip(*args: str, netns: str | None = None) -> str:
    """Run ``ip [-n NETNS] ARGS``; its stdout, or :class:`NetnsError` with the stderr."""
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def available() -> str | None:
    """None when network namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespace tests need root"
    try:
        probe = Netns.create("probe")
    except (NetnsError, FileNotFoundError) as error:
        return f"cannot create a network namespace: {error}"
    probe.delete()
    return None


_OURS = re.compile(r"^nd-[a-z0-9]+-(\d+)-[0-9a-f]{6}$")


def _sweep_stale() -> None:
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        match = _OURS.match(name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(NetnsError):
                ip("netns", "delete", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Uplink:
    """The veth pair joining a namespace to the host: ``host_ip`` on the host end."""

    host_ifname: str
    ns_ifname: str
    host_ip: str
    ns_ip: str


class Netns:
    """One network namespace; ``name`` is unique per process and call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.uplink: Uplink | None = None

    @classmethod
    def create(cls, label: str) -> Self:
        """A new namespace; first removes ours whose creating process is gone (a killed run)."""
        _sweep_stale()
        name = f"nd-{label}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        ip("netns", "add", name)
        netns = cls(name)
        try:
            ip("link", "set", "lo", "up", netns=name)
        except BaseException:
            netns.delete()
            raise
        return netns

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()

    def delete(self) -> None:
        with contextlib.suppress(NetnsError):
            ip("netns", "delete", self.name)

    # --- interfaces ---------------------------------------------------------------------------

    def add_link(self, ifname: str, *, up: bool = True) -> None:
        """An interface named ``ifname`` (a veth whose peer ``<ifname>p`` also stays inside)."""
        ip("link", "add", ifname, "type", "veth", "peer", "name", f"{ifname[:13]}p", netns=self.name)
        if up:
            self.set_up(ifname)
            self.set_up(f"{ifname[:13]}p")

    def set_up(self, ifname: str) -> None:
        ip("link", "set", ifname, "up", netns=self.name)

    def set_down(self, ifname: str) -> None:
        ip("link", "set", ifname, "down", netns=self.name)

    def add_address(self, ifname: str, cidr: str, *flags: str) -> None:
        """``ip addr add CIDR dev IFNAME [flags]``, e.g. flags ``nodad``, ``mngtmpaddr``."""
        ip("address", "add", cidr, "dev", ifname, *flags, netns=self.name)

    def delete_address(self, ifname: str, cidr: str) -> None:
        ip("address", "delete", cidr, "dev", ifname, netns=self.name)

    def change_address(self, ifname: str, cidr: str, *settings: str) -> None:
        """``ip addr change``, e.g. ``preferred_lft 0`` to deprecate an IPv6 address."""
        ip("address", "change", cidr, "dev", ifname, *settings, netns=self.name)

    def sysctl(self, key: str, value: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.name, "sysctl", "-qw", f"{key}={value}"],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def addresses(self, ifname: str) -> str:
        return ip("-o", "address", "show", "dev", ifname, netns=self.name)

    def add_uplink(self) -> Uplink:
        """A veth pair to the host on a free link-local /30 (host end .1, namespace end .2)."""
        used = ip("-o", "-4", "address", "show")
        for _ in range(50):
            third = random.randrange(100, 250)
            fourth = random.randrange(0, 256, 4)
            net = ipaddress.ip_network(f"169.254.{third}.{fourth}/30")
            host, inside = str(net.network_address + 1), str(net.network_address + 2)
            if f" {host}/" not in used and f" {inside}/" not in used:
                break
        else:
            raise NetnsError("no free link-local /30 for the uplink")
        host_if = f"ndu{uuid.uuid4().hex[:8]}"
        ip("link", "add", host_if, "type", "veth", "peer", "name", "uplink", "netns", self.name)
        ip("address", "add", f"{host}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        self.add_address("uplink", f"{inside}/30")
        self.set_up("uplink")
        self.uplink = Uplink(host_if, "uplink", host, inside)
        return self.uplink

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


class TcpRelay:
    """Forward TCP connections from ``listen`` to ``target`` (threads; for tests only)."""

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server((listen_host, 0))
        self.port = int(self._server.getsockname()[1])
        self._closed = threading.Event()
        self._blocked = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        """Connections relayed so far."""
        self._thread = threading.Thread(target=self._accept, name="tcp-relay", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._blocked.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def block(self) -> None:
        """Cut every connection and refuse new ones (the apiserver unreachable) until :meth:`unblock`."""
        self._blocked.set()
        self._drop_all()

    def unblock(self) -> None:
        self._blocked.clear()

    def drop_connections(self) -> None:
        """Close every relayed connection (as a server closes idle ones) but accept new ones."""
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        self._drop_all()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
