"""node-dns as a hidden primary: real NSD, Knot and BIND secondaries pulling the zone with TSIG.

One node-dns (``--transfer-allow key=xfr``, ``--notify`` to each secondary with the key) and
three secondaries on loopback share a module; tests that need another node-dns start their own.
Answers are compared with node-dns' own, zones as RRsets with ``node-dns zone``.
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import struct
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import pytest

from tests.harness import ControlPlane, Kube, NodeDns
from tests.harness.kube import wait_for
from tests.harness.ports import free_dns_port
from tests.harness.secondaries import ALL, KEY_NAME, Bind, Secondary
from tests.integration import recordkit as rk
from tests.integration.test_zone_dump import records, zone_command

pytestmark = pytest.mark.controlplane

SECRET = base64.b64encode(secrets.token_bytes(32)).decode()
KEYRING = dns.tsigkeyring.from_text({f"{KEY_NAME}.": ("hmac-sha256", SECRET)})
ZONE = "lb.example.net"


def metric(server: NodeDns, name: str, **labels: str) -> float:
    _, text = server.http_get("/metrics")
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        family, _, rest = head.partition("{")
        if family != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


def node_dns_answer(server: NodeDns, name: str, rdtype: str = "A") -> list[str]:
    reply = dns.query.udp(
        dns.message.make_query(name, rdtype), server.address, port=server.dns_port, timeout=2
    )
    return sorted(rd.to_text() for rrset in reply.answer for rd in rrset)


def secondary_answer(secondary: Secondary, name: str, rdtype: str = "A") -> list[str]:
    reply = secondary.query(name, rdtype)
    return sorted(rd.to_text() for rrset in reply.answer for rd in rrset)


def transfer_args(
    *targets: Secondary, allow: str = f"key={KEY_NAME}", extra: tuple[str, ...] = ()
) -> list[str]:
    notify = ", ".join(f"{s.address}:{s.port}+key={KEY_NAME}" for s in targets)
    args = [f"--tsig-key=hmac-sha256:{KEY_NAME}:{SECRET}", f"--transfer-allow={allow}", *extra]
    if notify:
        args.append(f"--notify={notify}")
    return args


class Primary:
    """node-dns plus its secondaries, built once per module."""

    def __init__(self, server: NodeDns, secondaries: list[Secondary], area: str, nodes: list[str]) -> None:
        self.server = server
        self.secondaries = secondaries
        self.area = area
        self.nodes = nodes


@pytest.fixture(scope="module")
def primary(control_plane: ControlPlane) -> Iterator[Primary]:
    kube = control_plane.kube
    area = rk.unique("xfr")
    nodes = [rk.node(kube, areas=area, ips=f"192.0.2.{i + 10}") for i in range(3)]
    ports = [free_dns_port() for _ in ALL]
    placeholders = [
        cls(ZONE, ("127.0.0.1", 0), SECRET, port=port) for cls, port in zip(ALL, ports, strict=True)
    ]
    server = NodeDns(control_plane.kubeconfig, extra_args=transfer_args(*placeholders))
    with server:
        started: list[Secondary] = []
        try:
            for cls, port in zip(ALL, ports, strict=True):
                started.append(cls(ZONE, server.dns_address, SECRET, port=port).start())
            yield Primary(server, started, area, nodes)
        finally:
            for secondary in started:
                secondary.stop()


def flip(primary: Primary, kube: Kube, index: int, ready: bool) -> list[str]:
    """Set one node's Ready condition and wait until node-dns answers the change; returns it."""
    kube.set_ready(primary.nodes[index], ready)
    ip = f"192.0.2.{index + 10}"
    name = f"{primary.area}.{ZONE}"

    def changed() -> list[str] | None:
        got = node_dns_answer(primary.server, name)
        return got if (ip in got) == ready else None

    return wait_for(changed, timeout=10, what=f"node-dns to {'add' if ready else 'drop'} {ip}")


def wait_converged(primary: Primary, name: str, timeout: float = 30.0) -> None:
    expected = node_dns_answer(primary.server, name)
    for secondary in primary.secondaries:
        try:
            wait_for(
                lambda s=secondary: secondary_answer(s, name) == expected,
                timeout=timeout,
                what=f"{secondary.kind} to answer {name} {expected}",
            )
        except TimeoutError as error:
            ours = primary.server._read_log()[-3000:]
            raise AssertionError(f"{error}\n{secondary.log()[-3000:]}\n--- node-dns:\n{ours}") from None


def test_each_secondary_loads_the_zone_by_axfr_at_node_dns_serial(primary: Primary) -> None:
    serial = int(
        dns.query.udp(
            dns.message.make_query(ZONE, "SOA"),
            primary.server.address,
            port=primary.server.dns_port,
            timeout=2,
        )
        .answer[0][0]
        .serial
    )

    for secondary in primary.secondaries:
        wait_for(
            lambda s=secondary: s.serial() == serial,
            timeout=30,
            what=f"{secondary.kind} to load serial {serial}",
        )

    assert metric(primary.server, "node_dns_transfers_total", result="ok") >= 3


def test_the_secondaries_zone_equals_node_dns_zone(primary: Primary, control_plane: ControlPlane) -> None:
    wait_converged(primary, f"{primary.area}.{ZONE}")
    dumped = zone_command(control_plane.kubeconfig)
    assert dumped.returncode == 0, dumped.stderr
    expected = {k: sorted(v) for k, v in records(dumped.stdout).items()}
    expected = {(name.lower(), rtype): [r.lower() for r in rrs] for (name, rtype), rrs in expected.items()}
    expected.pop((f"{ZONE}.", "SOA"))

    for secondary in primary.secondaries:
        held = secondary.zone_rrsets()
        held.pop((f"{ZONE}.", "SOA"))
        assert held == expected, secondary.kind


def test_a_node_flip_reaches_every_secondary_by_notify_and_ixfr(primary: Primary, kube: Kube) -> None:
    name = f"{primary.area}.{ZONE}"
    wait_converged(primary, name)
    ixfr_before = metric(primary.server, "node_dns_transfers_total", type="ixfr", result="ok")
    acked_before = metric(primary.server, "node_dns_notify_acked_total")

    assert flip(primary, kube, 0, False) == ["192.0.2.11", "192.0.2.12"]
    wait_converged(primary, name)

    assert metric(primary.server, "node_dns_transfers_total", type="ixfr", result="ok") >= ixfr_before + 3
    assert metric(primary.server, "node_dns_notify_acked_total") >= acked_before + 3
    flip(primary, kube, 0, True)
    wait_converged(primary, name)


def test_each_secondary_used_ixfr_for_a_small_change(primary: Primary, kube: Kube) -> None:
    name = f"{primary.area}.{ZONE}"
    flip(primary, kube, 1, False)
    wait_converged(primary, name)
    flip(primary, kube, 1, True)
    wait_converged(primary, name)

    ours = primary.server._read_log()
    for secondary in primary.secondaries:  # each transfers from its own loopback address
        assert f"IXFR (incremental) to {secondary.source} (key {KEY_NAME})" in ours, secondary.kind
    knot, bind = primary.secondaries[1].log(), primary.secondaries[2].log()
    assert "IXFR, incoming" in knot and "fallback to AXFR" not in knot, knot[-2000:]
    assert "Transfer status: success" in bind and "TSIG 'xfr'" in bind, bind[-2000:]


def test_a_name_without_records_answers_nodata_at_every_secondary_as_at_node_dns(primary: Primary) -> None:
    # The area is IPv4-only: its v6. name exists with no record, so node-dns answers NODATA. A zone
    # file cannot hold a name without records; the transfer marks it, so no secondary says NXDOMAIN.
    wait_converged(primary, f"{primary.area}.{ZONE}")
    name = f"v6.{primary.area}.{ZONE}"
    ours = dns.query.udp(
        dns.message.make_query(name, "AAAA"), primary.server.address, port=primary.server.dns_port, timeout=2
    )
    assert (ours.rcode(), ours.answer) == (dns.rcode.NOERROR, [])

    for secondary in primary.secondaries:
        theirs = secondary.query(name, "AAAA")
        assert (dns.rcode.to_text(theirs.rcode()), theirs.answer) == ("NOERROR", []), secondary.kind
        assert secondary.query(f"nothing-here.{ZONE}", "A").rcode() == dns.rcode.NXDOMAIN, secondary.kind


# --- clients: dig and kdig --------------------------------------------------------------------------
def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def guarded(control_plane: ControlPlane) -> Iterator[NodeDns]:
    """Transfers allowed with the key, or without one from 127.0.0.5 only."""
    rk.node(control_plane.kube, areas=rk.unique("guarded"), ips="192.0.2.99")
    server = NodeDns(
        control_plane.kubeconfig, extra_args=transfer_args(allow=f"key={KEY_NAME}; 127.0.0.5/32")
    )
    with server:
        yield server


def dig(server: NodeDns, *args: str) -> subprocess.CompletedProcess[str]:
    return run("dig", "-p", str(server.dns_port), f"@{server.address}", *args)


def kdig(server: NodeDns, *args: str) -> subprocess.CompletedProcess[str]:
    return run("kdig", "-p", str(server.dns_port), f"@{server.address}", *args)


def test_axfr_without_a_key_is_refused(guarded: NodeDns) -> None:
    result = kdig(guarded, ZONE, "AXFR")

    assert "REFUSED" in result.stdout + result.stderr and " SOA " not in result.stdout


def test_axfr_from_a_prefix_not_allowed_is_refused_and_one_allowed_gets_the_zone(guarded: NodeDns) -> None:
    refused = dig(guarded, "-b", "127.0.0.6", ZONE, "AXFR")
    allowed = dig(guarded, "-b", "127.0.0.5", ZONE, "AXFR")

    assert "Transfer failed" in refused.stdout and " SOA " not in refused.stdout
    assert allowed.stdout.count("\tSOA\t") == 2, allowed.stdout


@pytest.mark.parametrize(("key", "error"), [("xfr", "BADSIG"), ("other", "BADKEY")])
def test_axfr_with_a_wrong_key_gets_the_tsig_error_and_no_data(
    guarded: NodeDns, key: str, error: str
) -> None:
    wrong = base64.b64encode(b"y" * 32).decode()

    result = kdig(guarded, "-y", f"hmac-sha256:{key}:{wrong}", ZONE, "AXFR")

    assert f"error '{error}'" in result.stdout + result.stderr
    assert " SOA " not in result.stdout and "\tSOA\t" not in result.stdout
    assert metric(guarded, "node_dns_tsig_errors_total", error=error) >= 1


def test_axfr_with_the_right_key_is_the_zone_signed(guarded: NodeDns) -> None:
    for result in (
        kdig(guarded, "-y", f"hmac-sha256:xfr:{SECRET}", ZONE, "AXFR"),
        dig(guarded, "-y", f"hmac-sha256:xfr:{SECRET}", ZONE, "AXFR"),
    ):
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("\tSOA\t") == 2, result.stdout
        assert "TSIG\thmac-sha256." in result.stdout and "NOERROR" in result.stdout


def test_a_signed_soa_query_is_answered_signed(guarded: NodeDns) -> None:
    query = dns.message.make_query(ZONE, "SOA")
    query.use_tsig(KEYRING, keyname=f"{KEY_NAME}.")

    reply = dns.query.udp(query, guarded.address, port=guarded.dns_port, timeout=2)

    assert reply.had_tsig and reply.answer[0].rdtype == dns.rdatatype.SOA


# --- load: a big zone, a slow reader, ten transfers at once -------------------------------------------
BIG = 4000


@pytest.fixture(scope="module")
def big(control_plane: ControlPlane) -> Iterator[NodeDns]:
    """A zone of ~8,000 records (static addresses: no need for thousands of Node objects)."""
    ips = ",".join(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(1, BIG + 1))
    args = transfer_args(allow="127.0.0.0/8", extra=("--tcp-idle-timeout=1", "--max-transfers=12"))
    server = NodeDns(
        control_plane.kubeconfig, extra_args=args, env={"NODE_DNS_STATIC_RECORDS": f"bulk={ips}"}
    )
    with server:
        yield server


def test_a_secondary_that_stops_reading_is_cut_off_and_never_stalls_queries(big: NodeDns) -> None:
    """The kernel takes a zone this size into its buffers at once; what remains is a client that
    never reads. It must not hold the server: others are answered, and the idle timeout closes
    it. (tests/unit/test_xfr_stream.py covers a transfer paused mid-zone by flow control.)"""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((big.address, big.dns_port))
    request = dns.message.make_query(ZONE, "AXFR").to_wire()
    sock.sendall(struct.pack("!H", len(request)) + request)
    wait_for(
        lambda: metric(big, "node_dns_transfers_total", type="axfr") >= 1, timeout=10, what="the transfer"
    )

    assert dns.query.tcp(
        dns.message.make_query(ZONE, "SOA"), big.address, port=big.dns_port, timeout=2
    ).answer
    assert dns.query.udp(dns.message.make_query(ZONE, "NS"), big.address, port=big.dns_port, timeout=2).answer
    wait_for(
        lambda: metric(big, "node_dns_dns_tcp_connections") == 0,
        timeout=15,
        what="the idle timeout to close it",
    )
    assert metric(big, "node_dns_transfers_active") == 0
    sock.close()


def test_ten_transfers_at_once_while_dnsperf_runs(big: NodeDns, tmp_path: Path) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_text(f"{ZONE} SOA\nbulk.{ZONE} A\n{ZONE} NS\n")
    perf = subprocess.Popen(
        ["dnsperf", "-s", big.address, "-p", str(big.dns_port), "-d", str(queries), "-l", "4", "-Q", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with ThreadPoolExecutor(10) as pool:
            zones = list(pool.map(lambda _: axfr_count(big), range(10)))
        output, _ = perf.communicate(timeout=30)
    finally:
        if perf.poll() is None:
            perf.kill()
    expected = zones[0]
    assert expected > 2 * BIG
    assert zones == [expected] * 10
    lost = re.search(r"Queries lost:\s+(\d+)", output)
    assert lost is not None and int(lost.group(1)) == 0, output
    completed = re.search(r"Queries completed:\s+(\d+)", output)
    assert completed is not None and int(completed.group(1)) > 1000, output


def axfr_count(server: NodeDns) -> int:
    messages = dns.query.xfr(server.address, ZONE, port=server.dns_port, timeout=20, relativize=False)
    return sum(len(rrset) for message in messages for rrset in message.answer)


# --- a gap in the journal ---------------------------------------------------------------------------
def test_a_secondary_behind_the_journal_gets_the_whole_zone_in_ixfr_form(control_plane: ControlPlane) -> None:
    kube = control_plane.kube
    area = rk.unique("gap")
    nodes = [rk.node(kube, areas=area, ips=f"192.0.2.{i + 30}") for i in range(3)]
    bind = Bind(ZONE, ("127.0.0.1", 0), SECRET)
    server = NodeDns(
        control_plane.kubeconfig, extra_args=transfer_args(bind, extra=("--ixfr-journal-size=1",))
    )
    name = f"{area}.{ZONE}"
    with server:
        bind.primary = server.dns_address
        try:
            bind.start()
            wait_for(
                lambda: secondary_answer(bind, name) == node_dns_answer(server, name),
                timeout=30,
                what="first load",
            )
            bind.stop(keep=True)
            kube.set_ready(nodes[0], False)
            wait_for(
                lambda: "192.0.2.30" not in node_dns_answer(server, name), timeout=10, what="first change"
            )
            kube.set_ready(nodes[1], False)  # two changes: the journal of one has lost BIND's serial
            wait_for(
                lambda: node_dns_answer(server, name) == ["192.0.2.32"], timeout=10, what="second change"
            )
            bind.start()
            wait_for(
                lambda: secondary_answer(bind, name) == ["192.0.2.32"], timeout=60, what="bind to catch up"
            )
        finally:
            bind.stop()
        assert f"IXFR (whole zone) to {bind.source} (key {KEY_NAME})" in server._read_log()
