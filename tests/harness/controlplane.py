"""A throw-away etcd + kube-apiserver on loopback, as envtest runs them, for integration tests.

A real apiserver gives node-dns what a mock cannot: RBAC decisions, resourceVersions, watch
bookmarks, 410 Gone after compaction, strict schema validation. Both processes start in their own
process groups and are killed with SIGKILL on ``stop()`` (their data is disposable), and on Linux
they also die with the Python process that started them, so an aborted test run leaves nothing
behind. Ready in ~2.5 s on this machine.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Self

from tests.harness.kube import Kube, write_kubeconfig
from tests.harness.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "tools" / "versions.env"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
ADMIN_USER = "harness-admin"
WORKDIR_PREFIX = "node-dns-cp-"
OWNER_FILE = "owner.pid"

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class ControlPlaneError(RuntimeError):
    """The control plane could not start (missing binary, a process exited, readiness timeout)."""


def versions() -> dict[str, str]:
    """The pinned tool versions from ``tools/versions.env`` (the single source of truth)."""
    pins: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pins[key.strip()] = value.strip().strip("\"'")
    return pins


def tools_dir() -> Path:
    """Where ``tools/build.sh`` puts binaries: ``$TOOLS_DIR``, else the XDG cache directory."""
    if os.environ.get("TOOLS_DIR"):
        return Path(os.environ["TOOLS_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "node-dns" / "tools"


def tool(name: str, directory: Path | None = None) -> Path:
    """The path of a built tool, or a clear error telling how to build it."""
    path = (directory or tools_dir()) / name
    if not os.access(path, os.X_OK):
        raise ControlPlaneError(f"{path} is missing: run `make tools` (tools/build.sh) first")
    return path


def make_workdir(prefix: str) -> Path:
    """A fresh temp directory marked with our pid, after sweeping stale ones of dead owners.

    ``stop()`` removes its directory, but a run killed with SIGKILL cannot; etcd preallocates
    ~120 MB per data dir, so the next run removes directories whose owner process is gone.
    """
    _sweep_stale(prefix)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    (workdir / OWNER_FILE).write_text(str(os.getpid()))
    return workdir


def _sweep_stale(prefix: str) -> None:
    for candidate in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            if candidate.stat().st_uid != os.getuid():
                continue
            owner = int((candidate / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or being created right now
        if not _alive(owner):
            shutil.rmtree(candidate, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the parent dies, even by SIGKILL.

    The kernel ties this to the *thread* that forked, so start control planes from a thread that
    outlives them (the main thread in pytest and the demo).
    """
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn_logged(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None
) -> subprocess.Popen[bytes]:
    """Start a test server in its own session, output appended to ``log_path``, killed with us."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
        )


class _Process:
    """One child in its own process group, logging to a file it appends to across restarts."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name, self.argv, self.log_path = name, list(argv), log_path
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log: IO[bytes]
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl, thread-safe enough
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the whole process group and reap it; no graceful shutdown on purpose."""
        if self.popen is None or self.popen.poll() is not None:
            return  # never signal a reaped pid: the number may belong to someone else by now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise ControlPlaneError(f"{self.name} (pid {self.popen.pid}) survived SIGKILL") from exc

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ControlPlane:
    """etcd + kube-apiserver on free loopback ports, with an admin kubeconfig and REST client.

    Use as a context manager or call ``start()``/``stop()``. After ``start()``:
    ``.kubeconfig`` (admin kubeconfig path), ``.server``, ``.kube`` (admin :class:`Kube`),
    ``.workdir``. Node/RBAC/manifest helpers of :class:`Kube` are also reachable directly on the
    control plane (``control_plane.create_node(...)``) so tests read naturally.

    ``apiserver_args`` are appended to the apiserver's command line (for a scalar flag the last
    occurrence wins, so they override the defaults), e.g.
    ``["--etcd-compaction-interval=5s", "--watch-cache=false"]`` to provoke 410 Gone.
    ``audit=True`` writes a Metadata-level audit log, read with :meth:`audit_events`.
    """

    def __init__(
        self,
        *,
        apiserver_args: Sequence[str] = (),
        etcd_args: Sequence[str] = (),
        audit: bool = False,
        startup_timeout: float = 60.0,
        tools: Path | None = None,
    ) -> None:
        self.apiserver_args = list(apiserver_args)
        self.etcd_args = list(etcd_args)
        self.audit = audit
        self.startup_timeout = startup_timeout
        self.tools = tools
        self.workdir: Path | None = None
        self.kubeconfig: Path | None = None
        self.server = ""
        self.token = secrets.token_urlsafe(32)
        self.ca_data: str | None = None
        self.etcd_port = 0
        self.apiserver_port = 0
        self._kube: Kube | None = None
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Start etcd, then the apiserver; return once ``/readyz`` answers 200."""
        if self.workdir is not None:
            raise ControlPlaneError("already started")
        etcd_bin, apiserver_bin = tool("etcd", self.tools), tool("kube-apiserver", self.tools)
        atexit.register(self.stop)
        try:
            self.workdir = make_workdir(WORKDIR_PREFIX)
            self._prepare_files()
            self._etcd = _Process("etcd", self._etcd_argv(etcd_bin), self.workdir / "etcd.log")
            self._etcd.start()
            self._wait_etcd()
            self._apiserver = _Process(
                "kube-apiserver", self._apiserver_argv(apiserver_bin), self.workdir / "apiserver.log"
            )
            self.start_apiserver()
            self.ca_data = (self.workdir / "certs" / "apiserver.crt").read_text()
            self.kubeconfig = write_kubeconfig(
                self.workdir / "kubeconfig-admin.yaml",
                self.server,
                self.token,
                ca_data=self.ca_data,
                user=ADMIN_USER,
            )
            self._kube = Kube(self.server, self.token, ca_data=self.ca_data, workdir=self.workdir)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill both processes (SIGKILL to their groups) and delete the work directory. Idempotent."""
        atexit.unregister(self.stop)
        if self._kube is not None:
            self._kube.close()
        try:
            for process in (self._apiserver, self._etcd):
                if process is not None:
                    process.kill()
        finally:
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def stop_apiserver(self) -> None:
        """Kill the apiserver at once (SIGKILL), leaving etcd and its data: an outage."""
        if self._apiserver is None:
            raise ControlPlaneError("not started")
        self._apiserver.kill()

    def start_apiserver(self, timeout: float | None = None) -> None:
        """(Re)start the apiserver on the same port against the same etcd; wait for ``/readyz``."""
        if self._apiserver is None:
            raise ControlPlaneError("not started")
        if self._apiserver.running():
            raise ControlPlaneError("the apiserver is already running")
        self._apiserver.start()
        self._wait_ready(timeout or self.startup_timeout)

    # --- state --------------------------------------------------------------------------------

    @property
    def kube(self) -> Kube:
        """The admin REST client (system:masters)."""
        if self._kube is None:
            raise ControlPlaneError("not started")
        return self._kube

    @property
    def pids(self) -> list[int]:
        """Process ids of the children started (whether or not they still run)."""
        return [p.pid for p in (self._etcd, self._apiserver) if p is not None and p.pid is not None]

    @property
    def apiserver_running(self) -> bool:
        return self._apiserver is not None and self._apiserver.running()

    def apiserver_log(self) -> str:
        return self._apiserver.log_path.read_text(errors="replace") if self._apiserver else ""

    def etcd_log(self) -> str:
        return self._etcd.log_path.read_text(errors="replace") if self._etcd else ""

    def audit_events(self) -> list[dict[str, Any]]:
        """Audit events so far (needs ``audit=True``), e.g. to assert a process made no writes."""
        import json

        if not self.audit or self.workdir is None:
            raise ControlPlaneError("audit logging is off: pass audit=True")
        path = self.workdir / "audit.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def client_certificate(self, user: str, groups: Sequence[str] = ()) -> tuple[str, str]:
        """A client certificate (PEM) and its key for ``user`` in ``groups``, signed by the CA the
        apiserver trusts for client certificates."""
        assert self.workdir is not None
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            key, csr, crt = Path(tmp, "client.key"), Path(tmp, "client.csr"), Path(tmp, "client.crt")
            subject = f"/CN={user}" + "".join(f"/O={group}" for group in groups)
            for argv in (
                [
                    "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(csr),
                ],
                [
                    "openssl", "x509", "-req", "-in", str(csr), "-days", "1", "-out", str(crt),
                    "-CA", str(self.workdir / "client-ca.crt"), "-CAkey", str(self.workdir / "client-ca.key"),
                    "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                ],
            ):  # fmt: skip
                subprocess.run(argv, check=True, capture_output=True, timeout=30)
            return crt.read_text(), key.read_text()

    def __getattr__(self, name: str) -> Any:
        """Forward public helpers (``create_node``, ``set_ready``, ...) to :attr:`kube`."""
        if name.startswith("_") or not hasattr(Kube, name):
            raise AttributeError(name)
        return getattr(self.kube, name)

    # --- internals ----------------------------------------------------------------------------

    def _prepare_files(self) -> None:
        assert self.workdir is not None
        (self.workdir / "certs").mkdir()
        (self.workdir / "etcd").mkdir(mode=0o700)
        subprocess.run(
            ["openssl", "genrsa", "-out", str(self.workdir / "sa.key"), "2048"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        # A client CA, so tests can also authenticate with client certificates (as kubeadm's
        # admin.conf does): see client_certificate().
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "2", "-subj", "/CN=node-dns-test-client-ca",
                "-keyout", str(self.workdir / "client-ca.key"), "-out", str(self.workdir / "client-ca.crt"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        # token,user,uid,"group": the static token file gives the harness an admin identity.
        (self.workdir / "tokens.csv").write_text(f'{self.token},{ADMIN_USER},1,"system:masters"\n')
        if self.audit:
            (self.workdir / "audit-policy.yaml").write_text(
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
            )

    def _etcd_argv(self, binary: Path) -> list[str]:
        assert self.workdir is not None
        self.etcd_port, peer = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{peer}"
        return [
            str(binary),
            "--name=default",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--unsafe-no-fsync",  # disposable data; fsync would dominate bulk node creation
            "--log-level=warn",
            *self.etcd_args,
        ]

    def _apiserver_argv(self, binary: Path) -> list[str]:
        assert self.workdir is not None
        self.apiserver_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        sa_key = self.workdir / "sa.key"
        argv = [
            str(binary),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            f"--cert-dir={self.workdir / 'certs'}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            f"--client-ca-file={self.workdir / 'client-ca.crt'}",
            "--anonymous-auth=false",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--profiling=false",
        ]
        if self.audit:
            argv += [
                f"--audit-policy-file={self.workdir / 'audit-policy.yaml'}",
                f"--audit-log-path={self.workdir / 'audit.log'}",
                "--audit-log-mode=blocking",
            ]
        return argv + self.apiserver_args

    def _wait_etcd(self) -> None:
        url = f"http://127.0.0.1:{self.etcd_port}/health"

        def healthy() -> bool:
            with urllib.request.urlopen(url, timeout=2) as response:
                return b'"true"' in response.read()

        self._wait(self._etcd, healthy, self.startup_timeout, "etcd /health")

    def _wait_ready(self, timeout: float) -> None:
        probe = Kube(self.server, self.token, insecure=True)

        def ready() -> bool:
            status, _ = probe.request("GET", "/readyz")
            return status == 200

        try:
            self._wait(self._apiserver, ready, timeout, "kube-apiserver /readyz")
        finally:
            probe.close()

    @staticmethod
    def _wait(process: _Process | None, check: Any, timeout: float, what: str) -> None:
        """Poll ``check`` until true; fail fast with the log tail if the process exits."""
        assert process is not None
        deadline = time.monotonic() + timeout
        while True:
            if not process.running():
                raise ControlPlaneError(
                    f"{process.name} exited while waiting for {what}:\n{process.log_tail()}"
                )
            with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
                if check():
                    return
            if time.monotonic() >= deadline:
                raise ControlPlaneError(f"{what} not ready after {timeout:.0f}s:\n{process.log_tail()}")
            time.sleep(0.05)
