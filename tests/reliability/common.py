"""Helpers shared by the live reliability tests: DNS queries, metric reads, bounded waits."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

T = TypeVar("T")


def ask(
    address: tuple[str, int],
    name: str,
    rdtype: str = "A",
    *,
    source: str | None = None,
    timeout: float = 2.0,
    tcp: bool = False,
) -> dns.message.Message:
    """One query over UDP (or TCP); raises dns.exception.Timeout when nothing comes back."""
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(query, address[0], port=address[1], timeout=timeout, source=source)
    return dns.query.udp(query, address[0], port=address[1], timeout=timeout, source=source)


def addresses(msg: dns.message.Message) -> set[str]:
    return {rd.to_text() for rrset in msg.answer for rd in rrset if rrset.rdtype in (1, 28)}


def truncated(msg: dns.message.Message) -> bool:
    return bool(msg.flags & dns.flags.TC)


def metric(text: str, name: str, labels: str | None = None) -> float | None:
    """The value of one sample in Prometheus text format; ``labels`` as written, e.g. 'area="x"'."""
    pattern = (
        "^" + re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(?:\{\})?") + r" (\S+)$"
    )
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else None


def wait_until(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as error:  # keep polling; report the last error on timeout
            last = error
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what or 'condition'} not reached within {timeout}s (last error: {last!r})")
        time.sleep(interval)


def udp_socket(source: str = "127.0.0.1", timeout: float = 2.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.settimeout(timeout)
    return sock


def framed(wire: bytes) -> bytes:
    return len(wire).to_bytes(2, "big") + wire


def read_framed(sock: socket.socket) -> bytes | None:
    """One length-prefixed message, or None at EOF."""
    header = _read(sock, 2)
    if header is None:
        return None
    body = _read(sock, int.from_bytes(header, "big"))
    return body


def _read(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def exchange_many(
    sock: socket.socket, packets: list[bytes], address: tuple[str, int], chunk: int = 25
) -> list[bytes]:
    """Send ``packets`` in small bursts, reading replies between bursts so no socket buffer overflows."""
    replies: list[bytes] = []
    sock.setblocking(False)
    try:
        for start in range(0, len(packets), chunk):
            for packet in packets[start : start + chunk]:
                sock.sendto(packet, address)
            deadline = time.monotonic() + 0.01
            while time.monotonic() < deadline:
                try:
                    replies.append(sock.recv(65535))
                except BlockingIOError:
                    time.sleep(0.001)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                replies.append(sock.recv(65535))
                deadline = time.monotonic() + 0.3
            except BlockingIOError:
                time.sleep(0.005)
    finally:
        sock.setblocking(True)
    return replies
