"""Free loopback ports, picked by binding to port 0.

Binding to 0 lets the kernel choose, which is race-free among ports the kernel hands out; the
remaining race (someone else binding the port between our close and the child's bind) is narrowed
by never handing the same port out twice in one process.
"""

from __future__ import annotations

import socket
import threading

_handed_out: set[int] = set()
_lock = threading.Lock()


def _bind_zero(host: str, kind: int) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _bindable(host: str, port: int, kind: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1", *, udp: bool = False) -> int:
    """A TCP (or UDP) port on ``host`` that is free now and was not returned before."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    for _ in range(200):
        port = _bind_zero(host, kind)
        with _lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free port on {host} after 200 attempts")


def free_dns_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP, because a DNS server listens on both with one number."""
    for _ in range(200):
        port = _bind_zero(host, socket.SOCK_STREAM)
        if not _bindable(host, port, socket.SOCK_DGRAM):
            continue
        with _lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no port free for UDP and TCP on {host} after 200 attempts")
