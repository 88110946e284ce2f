"""Real programs around render hooks: tiny DNS backends on loopback aliases, a dnsdist with its
console, and the shipped examples adapted to a test's paths and ports."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

import dns.message
import dns.query
import dns.rrset
import yaml

from tests.harness.controlplane import _die_with_parent
from tests.harness.ports import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hooks"
DNSDIST = shutil.which("dnsdist") or "/usr/bin/dnsdist"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Backend:
    """A DNS server on one loopback address that answers every A query with a TXT naming itself,
    so a query through dnsdist tells which backend served it."""

    def __init__(self, address: str, port: int) -> None:
        self.address, self.port = address, port
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((address, port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self.queries = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            reply = dns.message.make_response(query)
            question = query.question[0]
            reply.answer.append(dns.rrset.from_text(question.name, 30, "IN", "TXT", f'"{self.address}"'))
            self.queries += 1
            self._sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(2)


def free_port_on_all(addresses: Iterable[str]) -> int:
    """A UDP port free on every one of ``addresses`` (the template has one port for all)."""
    addresses = list(addresses)
    for _ in range(100):
        port = free_port(addresses[0], udp=True)
        ok = True
        for address in addresses[1:]:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind((address, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no UDP port free on all backend addresses")


class Dnsdist:
    """dnsdist on loopback with its console; its backends come from ``backends`` (a Lua file)."""

    def __init__(self, workdir: Path, backends: Path) -> None:
        self.port = free_port("127.0.0.1", udp=True)
        self.console = free_port("127.0.0.1")
        self.conf = workdir / "dnsdist.conf"
        key = base64.b64encode(os.urandom(32)).decode()
        # The example's startup stanza, with this test's addresses.
        example = (EXAMPLES / "dnsdist.conf").read_text()
        example = example.replace('setLocal("0.0.0.0:53")', f'setLocal("127.0.0.1:{self.port}")')
        example = example.replace(
            'controlSocket("127.0.0.1:5199")', f'controlSocket("127.0.0.1:{self.console}")'
        )
        example = example.replace('setKey("REPLACE-WITH-OUTPUT-OF-makeKey()")', f'setKey("{key}")')
        example = example.replace("/run/node-dns/hooks/backends.lua", str(backends))
        self.conf.write_text(
            example
            + 'setServerPolicy(roundrobin)\nsetSecurityPollSuffix("")\n'
            + "setStaleCacheEntriesTTL(0)\n"
        )
        self.log = workdir / "dnsdist.log"
        self._popen: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with open(self.log, "ab") as log:
            self._popen = subprocess.Popen(
                [DNSDIST, "--supervised", "--disable-syslog", "-C", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
            )
        deadline = time.monotonic() + 15
        while True:
            try:
                self.console_run("showVersion()")
                return self
            except RuntimeError:
                if self._popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dnsdist did not start:\n{self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self._popen is not None and self._popen.poll() is None:
            os.killpg(self._popen.pid, signal.SIGTERM)
            try:
                self._popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._popen.pid, signal.SIGKILL)
                self._popen.wait(10)

    def console_run(self, lua: str) -> str:
        done = subprocess.run(
            [DNSDIST, "-C", str(self.conf), "-c", "-e", lua], capture_output=True, text=True, timeout=10
        )
        if done.returncode != 0 or "Connection refused" in done.stderr + done.stdout:
            raise RuntimeError(done.stderr or done.stdout)
        return done.stdout

    def servers(self) -> dict[str, str]:
        """Backend address -> state, from the console's showServers()."""
        found = {}
        for line in self.console_run("showServers()").splitlines():
            match = re.search(r"\s(\d+\.\d+\.\d+\.\d+:\d+|\[[0-9a-f:]+\]:\d+)\s+(\w+)", line)
            if match and not line.startswith("#"):
                found[match.group(1)] = match.group(2)
        return found

    def responder(self, qname: str) -> str | None:
        """Which backend answered one query sent through dnsdist (None: no answer)."""
        try:
            reply = dns.query.udp(dns.message.make_query(qname, "A"), "127.0.0.1", port=self.port, timeout=1)
        except dns.exception.Timeout:
            return None
        for rrset in reply.answer:
            for item in rrset:
                return item.strings[0].decode()
        return None


def example_hook(name: str, workdir: Path, replacements: Mapping[str, str]) -> dict[str, Any]:
    """One hook of examples/hooks/hooks.yaml, its template copied into ``workdir`` with the
    ``{% set ... %}`` lines and paths replaced (the only lines a user edits)."""
    (entry,) = [
        hook
        for hook in yaml.safe_load((EXAMPLES / "hooks.yaml").read_text())["hooks"]
        if hook["name"] == name
    ]
    template = (EXAMPLES / entry["template_file"]).read_text()
    for old, new in replacements.items():
        template = template.replace(old, new)
    (workdir / entry["template_file"]).write_text(template)
    entry["output"] = str(workdir / Path(entry["output"]).name)
    return dict(entry)
