"""Run node-dns as a real subprocess, the way a Pod runs it, for end-to-end tests and the demo.

A subprocess (not an in-process app) catches what in-process tests cannot: flag and env parsing,
signal handling, exit codes, and log output. Output goes to a file so a chatty process never
blocks on a full pipe, and the text stays readable after the process is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from tests.harness.controlplane import make_workdir, spawn_logged
from tests.harness.ports import free_dns_port, free_port

DEFAULT_ZONE = "lb.example.net"
AREAS_ANNOTATION = "example.net/node-areas"
IPS_ANNOTATION = "example.net/node-ips"


class NodeDnsError(RuntimeError):
    """node-dns exited early or did not become ready; the message carries its log tail."""


class NodeDns:
    """One ``python -m node_dns serve`` process on free loopback ports.

    ``extra_args`` are appended to the command line; ``env`` is added to the environment (every
    flag is also a ``NODE_DNS_*`` variable). ``NODE_DNS_*`` variables of the test process itself
    are *not* inherited, so a developer's shell cannot change what a test runs.
    The context manager starts the process and waits until ``/readyz`` answers 200.
    """

    def __init__(
        self,
        kubeconfig: str | Path | None,
        *,
        zone: str = DEFAULT_ZONE,
        nameservers: str | None = None,
        soa_email: str = "hostmaster@example.net",
        areas_annotation: str = AREAS_ANNOTATION,
        ips_annotation: str = IPS_ANNOTATION,
        dns_port: int | None = None,
        http_port: int | None = None,
        address: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.zone = zone
        self.address = address
        self.dns_port = dns_port if dns_port is not None else free_dns_port(address)
        self.http_port = http_port if http_port is not None else free_port(address)
        self.ready_timeout = ready_timeout
        self.argv = [
            sys.executable,
            "-m",
            "node_dns",
            "serve",
            f"--zone={zone}",
            f"--nameservers={nameservers or f'ns1.{zone}={address}'}",
            f"--soa-email={soa_email}",
            f"--dns-address={address}",
            f"--dns-port={self.dns_port}",
            f"--http-address={address}",
            f"--http-port={self.http_port}",
            f"--areas-annotation={areas_annotation}",
            f"--ips-annotation={ips_annotation}",
        ]
        if kubeconfig is not None:
            self.argv.append(f"--kubeconfig={kubeconfig}")
        self.argv += list(extra_args)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_DNS_")}
        self.env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
        self._logdir: Path | None = None
        self.log_path: Path | None = None
        self._final_logs: str | None = None
        self._popen: subprocess.Popen[bytes] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Start the process (not waiting for readiness; see :meth:`wait_ready`)."""
        if self._popen is not None:
            raise NodeDnsError("already started")
        atexit.register(self.kill)
        self._logdir = make_workdir("node-dns-run-")
        self.log_path = self._logdir / "node-dns.log"
        self._popen = spawn_logged(self.argv, self.log_path, self.env)
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until ``GET /readyz`` is 200; fail fast with the log tail if the process exits."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.ready_timeout)
        while True:
            if not self.running:
                raise NodeDnsError(f"node-dns exited with {self.returncode} before ready:\n{self._tail()}")
            if self.ready():
                return
            if time.monotonic() >= deadline:
                raise NodeDnsError(f"node-dns not ready within the timeout:\n{self._tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code (negative = signal)."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL at once (a crashed or evicted Pod); returns the exit code."""
        return self._end(signal.SIGKILL, 10.0)

    def _end(self, sig: signal.Signals, timeout: float) -> int | None:
        atexit.unregister(self.kill)
        popen = self._popen
        if popen is not None and popen.poll() is None:
            # Signal the group while its leader is unreaped, so the id cannot have been reused.
            _signal_group(popen.pid, sig)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(popen.pid, signal.SIGKILL)
                popen.wait(10.0)
        self._cleanup()
        return popen.returncode if popen is not None else None

    def _cleanup(self) -> None:
        if self._final_logs is None:
            self._final_logs = self._read_log()
            if self._logdir is not None:
                shutil.rmtree(self._logdir, ignore_errors=True)

    # --- state --------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    @property
    def dns_address(self) -> tuple[str, int]:
        """``(host, port)`` to send DNS queries to."""
        return (self.address, self.dns_port)

    def http_get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        """GET on the HTTP server (``/readyz``, ``/healthz``, ``/metrics``): status and body."""
        conn = http.client.HTTPConnection(self.address, self.http_port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200 right now."""
        try:
            status, _ = self.http_get("/readyz", timeout=1.0)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200

    def logs(self) -> str:
        """Everything the process wrote to stdout and stderr so far (also after it ended)."""
        return self._final_logs if self._final_logs is not None else self._read_log()

    def _read_log(self) -> str:
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _tail(self, lines: int = 60) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
