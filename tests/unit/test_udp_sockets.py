"""The DNS UDP socket's kernel side: receive buffer sizing and the kernel's drop counter."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from node_dns.transports import sockets

HEADER = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
PROC_UDP = "\n".join(
    [
        HEADER + "inode ref pointer drops",
        "  118: 0100007F:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 "
        + "4242 2 0000000000000000 17",
        "  200: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 "
        + "999 2 0000000000000000 5",
    ]
)


@pytest.fixture
def udp_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_drops_are_read_for_our_sockets_only() -> None:
    assert sockets.parse_drops(PROC_UDP.splitlines(), frozenset({4242})) == {4242: 17}


def test_drops_sum_over_the_ipv4_and_ipv6_tables(tmp_path: Path) -> None:
    (tmp_path / "udp").write_text(PROC_UDP)
    (tmp_path / "udp6").write_text(PROC_UDP.replace(" 999 ", " 31337 "))
    tables = (tmp_path / "udp", tmp_path / "udp6")
    assert sockets.kernel_drops(frozenset({4242, 31337}), tables) == 17 + 5


def test_no_readable_table_says_unknown_rather_than_zero(tmp_path: Path) -> None:
    assert sockets.kernel_drops(frozenset({1}), (tmp_path / "missing",)) is None


def test_a_real_socket_is_found_in_proc_with_no_drops(udp_socket: socket.socket) -> None:
    assert sockets.kernel_drops(frozenset({sockets.inode(udp_socket)})) == 0


def _overflow(sock: socket.socket) -> None:
    """Fill a small receive buffer past its end, so the kernel drops datagrams."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(100):
            sender.sendto(b"x" * 512, sock.getsockname())


def test_a_held_socket_tells_its_own_drops_as_proc_does(udp_socket: socket.socket) -> None:
    _overflow(udp_socket)
    dropped = sockets.socket_drops(udp_socket)
    assert dropped is not None and dropped > 0
    assert dropped == sockets.kernel_drops(frozenset({sockets.inode(udp_socket)}))


def test_a_held_socket_is_read_on_the_loop_without_proc(udp_socket: socket.socket) -> None:
    reading = sockets.held_socket_drops(udp_socket)
    assert isinstance(reading, sockets.OnLoop)
    _overflow(udp_socket)
    asyncio.run(reading.refresh())
    assert reading() == sockets.socket_drops(udp_socket)


def test_zero_leaves_the_kernel_default(udp_socket: socket.socket) -> None:
    before = sockets.granted(udp_socket)
    assert sockets.size_receive_buffer(udp_socket, 0) is None
    assert sockets.granted(udp_socket) == before


def test_a_buffer_under_the_cap_is_granted(udp_socket: socket.socket) -> None:
    sizing = sockets.size_receive_buffer(udp_socket, 65536)
    assert sizing is not None and not sizing.capped and sizing.granted == 65536


def test_past_the_cap_without_force_the_kernel_caps_it_and_one_warning_says_how_to_fix_it(
    udp_socket: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    limit = sockets.rmem_max()
    assert limit is not None
    sizing = sockets.size_receive_buffer(udp_socket, limit * 2, force=False)
    assert sizing is not None and sizing.capped and sizing.granted == limit
    with caplog.at_level(logging.DEBUG, logger="node_dns.transports"):
        sockets.report(sizing, limit=limit)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert f"net.core.rmem_max={limit}" in message
    assert "--udp-receive-buffer" in message and "CAP_NET_ADMIN" in message


def test_a_slow_reading_is_taken_in_a_worker_thread_and_served_from_memory() -> None:
    readers: list[int] = []

    def read() -> int:
        readers.append(threading.get_ident())
        return 7

    reading = sockets.OffLoop(read)
    assert reading() is None  # nothing read before the first refresh
    asyncio.run(reading.refresh())
    assert reading() == 7
    assert readers and readers[0] != threading.get_ident()
    assert reading() == 7 and len(readers) == 1  # served from memory until the next refresh


def test_only_the_lines_of_the_asked_sockets_are_parsed_among_many(tmp_path: Path) -> None:
    line = (
        "{n}: 0100007F:{port:04X} 00000000:0000 07 00000000:00000000 00:00000000 00000000"
        " 0 0 {inode} 2 0 {drops}"
    )
    lines = [line.format(n=n, port=n, inode=100_000 + n, drops=n % 3) for n in range(5000)]
    table = tmp_path / "udp"
    table.write_text("header\n" + "\n".join(lines) + "\n")
    assert sockets.kernel_drops(frozenset({100_004, 104_999}), (table,)) == 4 % 3 + 4999 % 3


def test_a_number_that_is_also_another_sockets_uid_does_not_hide_the_inodes_line(tmp_path: Path) -> None:
    table = tmp_path / "udp"
    uid_4242 = "  7: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000  4242  0 777 2 0 9"
    table.write_text(HEADER + "inode ref pointer drops\n" + uid_4242 + "\n" + PROC_UDP.splitlines()[1] + "\n")

    assert sockets.kernel_drops(frozenset({4242}), (table,)) == 17
