"""Real secondaries of node-dns on loopback: NSD, Knot and BIND 9 from their Debian packages.

Each writes its own configuration (TSIG key ``xfr``, NOTIFY accepted from 127.0.0.0/8 with the
key, AXFR open to loopback so tests can read back what it holds), runs in the foreground in its
own process group, and logs to a file the tests read (which transfer type it used, which key it
verified). The configurations are the ones the README shows, with paths and ports filled in.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Self

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone

from tests.harness.controlplane import _die_with_parent, make_workdir
from tests.harness.ports import free_dns_port

KEY_NAME = "xfr"
ZONE = "lb.example.net"

# The key and zone stanzas are what README "Serve from anywhere" shows (tests/unit/test_readme.py
# checks it): placeholders are filled per run, the test-only lines are added by each class.
NSD_SERVER = """server:
    ip-address: {address}@{port}
    port: {port}
    username: ""
    chroot: ""
    zonesdir: "{workdir}"
    database: ""
    pidfile: "{workdir}/nsd.pid"
    xfrdfile: "{workdir}/xfrd.state"
    xfrdir: "{workdir}/xfr"
    zonelistfile: "{workdir}/zone.list"
    logfile: "{workdir}/nsd.log"
    verbosity: 2
    xfrd-reload-timeout: 0
remote-control:
    control-enable: no
"""
NSD_ZONE = """key:
    name: xfr
    algorithm: hmac-sha256
    secret: "{secret}"
zone:
    name: lb.example.net
    zonefile: "lb.example.net.zone"
    request-xfr: {primary} xfr
    allow-notify: {notify_from} xfr
"""
KNOT_SERVER = """server:
    listen: {address}@{port}
    rundir: "{workdir}"
log:
  - target: stderr
    any: info
database:
    storage: "{workdir}/db"
"""
KNOT_ZONE = """key:
  - id: xfr
    algorithm: hmac-sha256
    secret: {secret}
remote:
  - id: node-dns
    address: {primary}
    key: xfr
{via}acl:
  - id: notify-from-node-dns
    address: {notify_from}
    key: xfr
    action: notify
{acl_extra}zone:
  - domain: lb.example.net
    storage: "{storage}"
    file: "lb.example.net.zone"
    master: node-dns
    acl: {acls}
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
"""
BIND_OPTIONS = """options {{
    directory "{workdir}";
    pid-file "{workdir}/named.pid";
    session-keyfile "{workdir}/session.key";
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ 127.0.0.0/8; }};
}};
controls {{ }};
"""
BIND_ZONE = """key "xfr" {{
    algorithm hmac-sha256;
    secret "{secret}";
}};
zone "lb.example.net" {{
    type secondary;
    primaries {{ {primary} key xfr; }};
    allow-notify {{ key xfr; }};
    file "lb.example.net.db";
{extra}}};
"""


class SecondaryError(RuntimeError):
    pass


class Secondary:
    """One secondary server process for ``zone``, pulling from ``primary`` (host, port)."""

    kind = ""
    binary = ""
    source = "127.0.0.1"
    """Address it makes transfers from: one per kind, so node-dns' log tells them apart."""

    def __init__(self, zone: str, primary: tuple[str, int], secret: str, *, port: int | None = None) -> None:
        self.zone = zone
        self.primary = primary
        self.secret = secret
        self.address = "127.0.0.1"
        self.port = port if port is not None else free_dns_port(self.address)
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._final_log = ""

    # --- to be filled in per server ---------------------------------------------------------------
    def config(self, workdir: Path) -> Path:
        raise NotImplementedError

    def argv(self, config: Path) -> list[str]:
        raise NotImplementedError

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        if shutil.which(self.binary) is None:
            raise SecondaryError(f"{self.binary} is not installed (tools/apt.sh installs it)")
        if self.workdir is None:
            self.workdir = make_workdir(f"{self.kind}-secondary-")
            self.log_path = self.workdir / f"{self.kind}.log"
        config = self.config(self.workdir)
        atexit.register(self.kill)
        with open(self.log_path, "ab") as log:  # type: ignore[arg-type]
            self._popen = subprocess.Popen(
                self.argv(config),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
            )
        self.wait_listening()
        return self

    def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._popen is None or self._popen.poll() is not None:
                raise SecondaryError(f"{self.kind} exited:\n{self.log()[-3000:]}")
            with contextlib.suppress(dns.exception.DNSException, OSError):
                dns.query.udp(
                    dns.message.make_query(self.zone, "SOA"), self.address, port=self.port, timeout=0.3
                )
                return
            time.sleep(0.05)
        raise SecondaryError(f"{self.kind} does not answer on port {self.port}:\n{self.log()[-3000:]}")

    def stop(self, *, keep: bool = False) -> None:
        """Stop the process; ``keep`` keeps its files for a restart (its zone copy survives)."""
        atexit.unregister(self.kill)
        popen = self._popen
        if popen is not None and popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGTERM)
            try:
                popen.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(10)
        self._popen = None
        if not keep and self.workdir is not None:
            self._final_log = self.log()
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def kill(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)

    # --- reading ---------------------------------------------------------------------------------
    def log(self) -> str:
        if self.workdir is None or self.log_path is None or not self.log_path.exists():
            return self._final_log
        return self.log_path.read_text(errors="replace")

    def query(self, name: str, rdtype: str) -> dns.message.Message:
        return dns.query.udp(dns.message.make_query(name, rdtype), self.address, port=self.port, timeout=2)

    def serial(self) -> int | None:
        """The SOA serial it serves, or None while it has no zone."""
        try:
            answer = self.query(self.zone, "SOA")
        except (dns.exception.DNSException, OSError):
            return None
        if answer.rcode() != dns.rcode.NOERROR or not answer.answer:
            return None
        return int(answer.answer[0][0].serial)

    def zone_rrsets(self) -> dict[tuple[str, str], list[str]]:
        """What it holds, read back by AXFR (open to loopback in every configuration here)."""
        zone = dns.zone.from_xfr(
            dns.query.xfr(self.address, self.zone, port=self.port, timeout=10, relativize=False),
            relativize=False,
        )
        return rrsets_of(zone)


def rrsets_of(zone: dns.zone.Zone) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for name, rdataset in zone.iterate_rdatasets():
        found[(name.to_text().lower(), dns.rdatatype.to_text(rdataset.rdtype))] = sorted(
            rd.to_text().lower() for rd in rdataset
        )
    return found


class Nsd(Secondary):
    kind = "nsd"
    binary = "nsd"
    source = "127.0.0.2"

    def config(self, workdir: Path) -> Path:
        host, port = self.primary
        (workdir / "xfr").mkdir(exist_ok=True)
        server = NSD_SERVER.format(address=self.address, port=self.port, workdir=workdir)
        # test-only: transfers from an address of its own; AXFR open to loopback for read-back
        extra = f"    outgoing-interface: {self.source}\n    provide-xfr: 127.0.0.0/8 NOKEY\n"
        zone = NSD_ZONE.format(secret=self.secret, primary=f"{host}@{port}", notify_from="127.0.0.0/8")
        path = workdir / "nsd.conf"
        path.write_text(server + zone + extra)
        self.log_path = workdir / "nsd.log"
        return path

    def argv(self, config: Path) -> list[str]:
        return ["nsd", "-d", "-c", str(config)]


class Knot(Secondary):
    kind = "knot"
    binary = "knotd"
    source = "127.0.0.3"

    def config(self, workdir: Path) -> Path:
        host, port = self.primary
        (workdir / "db").mkdir(exist_ok=True)
        server = KNOT_SERVER.format(address=self.address, port=self.port, workdir=workdir)
        body = KNOT_ZONE.format(
            secret=self.secret,
            primary=f"{host}@{port}",
            notify_from="127.0.0.0/8",
            storage=workdir,
            # test-only: transfers from an address of its own; AXFR open to loopback for read-back
            via=f"    via: {self.source}\n",
            acl_extra="  - id: read-back\n    address: 127.0.0.0/8\n    action: transfer\n",
            acls="[notify-from-node-dns, read-back]",
        )
        path = workdir / "knot.conf"
        path.write_text(server + body)
        return path

    def argv(self, config: Path) -> list[str]:
        return ["knotd", "-c", str(config)]


class Bind(Secondary):
    kind = "bind"
    binary = "named"
    source = "127.0.0.4"

    def config(self, workdir: Path) -> Path:
        host, port = self.primary
        options = BIND_OPTIONS.format(address=self.address, port=self.port, workdir=workdir)
        zone = BIND_ZONE.format(
            secret=self.secret,
            primary=f"{host} port {port}",
            # test-only: transfers from an address of its own
            extra=f"    transfer-source {self.source};\n",
        )
        path = workdir / "named.conf"
        path.write_text(options + zone)
        return path

    def argv(self, config: Path) -> list[str]:
        return ["named", "-g", "-u", "root", "-c", str(config)]


ALL: tuple[type[Secondary], ...] = (Nsd, Knot, Bind)
