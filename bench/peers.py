"""NSD and Knot serving the zone node-dns serves, written from node-dns' own snapshot.

The zone file comes from :class:`node_dns.zone.writer.Zone` fed with the cluster's nodes
through node-dns' own translation (``facts_from_node``), and carries the SOA serial the running
node-dns answers with; :func:`compare` then checks that all servers give the same answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from bench import common
from node_dns.settings import Settings
from node_dns.sources import nodes
from node_dns.zone import snapshot
from node_dns.zone.config import zone_config
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION
from tests.harness.ports import free_dns_port

TYPE_NAMES = {1: "A", 2: "NS", 6: "SOA", 28: "AAAA"}


def settings() -> Settings:
    """The settings node-dns runs with in the bench (see :func:`bench.common.node_dns`)."""
    return Settings.model_validate(
        {
            "zone": common.ZONE,
            "nameservers": common.NAMESERVERS,
            "soa_email": common.SOA_EMAIL,
            "areas_annotation": AREAS_ANNOTATION,
            "ips_annotation": IPS_ANNOTATION,
        }
    )


def snapshot_of(items: Iterable[dict[str, Any]]) -> snapshot.Snapshot:
    config = settings()
    state = Zone(zone_config(config), Policy(cordoned_healthy=config.cordoned_healthy))
    keys = nodes.Keys(areas=config.areas_annotation, ips=config.ips_annotation)
    facts = [(nodes.facts_from_node(item, keys)[0], None) for item in items]
    state.replace_all(facts, None)
    return state.snapshot


def zone_text(snap: snapshot.Snapshot, serial: int) -> str:
    """Master-file text of every record of the snapshot, SOA serial replaced by ``serial``."""
    lines = [f"$ORIGIN {snap.zone}."]
    for key in sorted(snap.names, key=lambda k: (len(k), k)):
        owner = ".".join(label.decode("ascii") for label in key) + "."
        for rtype, rrset in sorted(snap.names[key].rrsets.items()):
            for text in rrset.texts:
                rdata = text
                if rtype == snapshot.TYPE_SOA:
                    parts = text.split()
                    parts[2] = str(serial)
                    rdata = " ".join(parts)
                lines.append(f"{owner} {rrset.ttl} IN {TYPE_NAMES[rtype]} {rdata}")
    return "\n".join(lines) + "\n"


def live_serial(port: int) -> int:
    reply = dns.query.udp(dns.message.make_query(common.ZONE, "SOA"), "127.0.0.1", port=port, timeout=2)
    return int(reply.answer[0][0].serial)


class Server:
    """A peer DNS server process pinned to the server CPU, in its own process group."""

    name = ""

    def __init__(self, workdir: Path, zone_file: Path) -> None:
        self.workdir = workdir
        self.zone_file = zone_file
        self.port = free_dns_port()
        self.popen: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        raise NotImplementedError

    def pinned(self, argv: Sequence[str]) -> list[str]:
        """Where the server runs: the server CPU (a subclass may spread it)."""
        return common.pinned(argv, common.SERVER_CPU)

    def start(self) -> None:
        with open(self.workdir / "server.log", "ab") as log:
            self.popen = subprocess.Popen(
                self.pinned(self.argv()),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            common.wait_answering(self.port, common.query_bytes(common.ZONE, common.TYPE_SOA), timeout=30)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.name} did not answer:\n{self.log()[-2000:]}") from None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


class Nsd(Server):
    """NSD with one server process, response rate limiting off, minimal responses."""

    name = "NSD"
    tcp_query_count = 0
    """NSD's default: no cap on queries per TCP connection."""

    def argv(self) -> list[str]:
        conf = self.workdir / "nsd.conf"
        d = self.workdir
        conf.write_text(
            f"""server:
    ip-address: 127.0.0.1@{self.port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    verbosity: 0
    rrl-ratelimit: 0
    minimal-responses: yes
    refuse-any: yes
    tcp-count: 256
    tcp-query-count: {self.tcp_query_count}
remote-control:
    control-enable: no
zone:
    name: {common.ZONE}
    zonefile: "{self.zone_file}"
"""
        )
        return ["nsd", "-d", "-c", str(conf)]


class CappedNsd(Nsd):
    """NSD closing TCP connections after 1000 queries, as node-dns does by default."""

    name = "NSD capped"
    tcp_query_count = 1000


class Knot(Server):
    """Knot DNS with one UDP and one TCP worker."""

    name = "Knot"

    def argv(self) -> list[str]:
        conf = self.workdir / "knot.conf"
        d = self.workdir
        conf.write_text(
            f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{d}"
    semantic-checks: off
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: {common.ZONE}
    file: "{self.zone_file}"
"""
        )
        return ["knotd", "-c", str(conf)]


def write_zone(workdir: Path, items: Iterable[dict[str, Any]], node_dns_port: int) -> Path:
    path = workdir / f"{common.ZONE}.zone"
    path.write_text(zone_text(snapshot_of(items), live_serial(node_dns_port)))
    return path


def _summary(reply: dns.message.Message) -> tuple[Any, ...]:
    def section(rrsets: list[Any]) -> list[str]:
        return sorted(line for rrset in rrsets for line in rrset.to_text().lower().splitlines())

    return (
        dns.rcode.to_text(reply.rcode()),
        bool(reply.flags & dns.flags.AA),
        bool(reply.flags & dns.flags.TC),
        section(reply.answer),
        section(reply.authority),
    )


def compare(ports: dict[str, int], queries: Sequence[tuple[str, str]], *, tcp: bool = False) -> list[str]:
    """Differences between the servers' answers (rcode, AA, TC, answer, authority): [] if none."""
    problems: list[str] = []
    for name, qtype in queries:
        for payload in (None, 1232, 4096):
            query = dns.message.make_query(name, qtype, use_edns=payload is not None, payload=payload or 512)
            seen: dict[str, tuple[Any, ...]] = {}
            for server, port in ports.items():
                ask = dns.query.tcp if tcp else dns.query.udp
                seen[server] = _summary(ask(query, "127.0.0.1", port=port, timeout=2))
            first = next(iter(seen.values()))
            if any(value != first for value in seen.values()):
                what = f"{name} {qtype} edns={payload}"
                problems.append(what + "".join(f"\n    {s}: {v}" for s, v in seen.items()))
    return problems


def settle(seconds: float = 0.5) -> None:
    """Let a server finish starting (Knot loads the zone in the background)."""
    time.sleep(seconds)
