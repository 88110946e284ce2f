"""Run ``node-dns agent`` as a real subprocess inside a test's network namespace.

The agent reads the interfaces of the namespace it runs in, so it is started through
``ip netns exec``; it reaches the test apiserver through the namespace's uplink (see
:mod:`tests.harness.netns`). Output goes to a file, readable after the process is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from tests.harness.controlplane import REPO_ROOT, spawn_logged
from tests.harness.netns import Netns


class AgentProcess:
    """One ``python -m node_dns agent`` in ``netns``; a context manager that stops it (SIGTERM)."""

    def __init__(
        self,
        netns: Netns,
        kubeconfig: Path,
        *,
        node: str | None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.netns = netns
        self.argv = netns.command(
            [
                sys.executable,
                "-m",
                "node_dns",
                "agent",
                f"--kubeconfig={kubeconfig}",
                *([f"--node-name={node}"] if node else []),
                *extra_args,
            ]
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_DNS_") and k != "NODE_NAME"}
        self.env.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO_ROOT), **(env or {})})
        handle, name = tempfile.mkstemp(prefix="node-dns-agent-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.popen = spawn_logged(self.argv, self.log_path, self.env)
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        return self.popen.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, port: int, path: str) -> str:
        """GET http://127.0.0.1:<port><path> from inside the namespace (the agent's HTTP server)."""
        url = f"http://127.0.0.1:{port}{path}"
        code = (
            "import sys, urllib.request; "
            f"sys.stdout.write(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
        )
        done = subprocess.run(
            self.netns.command([sys.executable, "-c", code]), capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "GET failed")
        return done.stdout
