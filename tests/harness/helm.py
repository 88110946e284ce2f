"""Run the Helm binary that ``tools/build.sh`` builds: ``helm template`` and ``helm lint``.

Values go in as a YAML file (not ``--set``), so tests pass real types (lists, nulls, numbers) the way
a user's values file does. Rendering is parsed with PyYAML into a list of objects. Every call has a
timeout.

The Helm built from module sources has no default Kubernetes version compiled in (it would claim
v1.20), so every render passes ``--kube-version`` with the version pinned in ``tools/versions.env``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.harness.controlplane import REPO_ROOT, tools_dir, versions

CHART = REPO_ROOT / "charts" / "node-dns"
TIMEOUT = 60.0


class HelmError(RuntimeError):
    """helm exited non-zero; ``stderr`` holds its message for assertions."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv, self.returncode, self.stdout, self.stderr = list(argv), returncode, stdout, stderr
        super().__init__(
            f"helm {' '.join(argv[1:3])} exited {returncode}: {stderr.strip() or stdout.strip()}"
        )


def find_helm() -> Path | None:
    """The Helm binary built by ``tools/build.sh``, or None when it has not been built."""
    candidate = tools_dir() / "helm"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


@dataclass
class Rendered:
    """The objects of one ``helm template`` run, with lookups tests need."""

    objects: list[dict[str, Any]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.objects)

    def kinds(self) -> list[str]:
        return sorted(obj["kind"] for obj in self.objects)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        """The single object of ``kind`` (and ``name``); fails if there are none or several."""
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        if len(found) != 1:
            names = [o["metadata"]["name"] for o in self.all(kind)]
            raise LookupError(f"expected one {kind} named {name or '*'}, found {names}")
        return found[0]

    def container(self, name: str = "node-dns") -> dict[str, Any]:
        containers = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == name)

    def env(self) -> dict[str, str]:
        """The controller's plain ``value`` environment variables."""
        return {e["name"]: e["value"] for e in self.container().get("env", []) if "value" in e}

    def env_from_fields(self) -> dict[str, str]:
        """Environment variables filled from the downward API: name -> fieldPath."""
        return {
            e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
            for e in self.container().get("env", [])
            if "fieldRef" in e.get("valueFrom", {})
        }


class Helm:
    """A Helm binary plus the Kubernetes version renders are made for."""

    def __init__(self, binary: Path | None = None, *, kube_version: str | None = None) -> None:
        found = binary or find_helm()
        if found is None:
            raise FileNotFoundError(f"no helm in {tools_dir()}: run `make tools` (tools/build.sh helm)")
        self.binary = found
        self.kube_version = kube_version or versions()["KUBERNETES_VERSION"]
        # Keep Helm away from the developer's own Helm config, caches and kubeconfig.
        self._home = Path(tempfile.mkdtemp(prefix="node-dns-helm-"))
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self._home),
            "HELM_CACHE_HOME": str(self._home / "cache"),
            "HELM_CONFIG_HOME": str(self._home / "config"),
            "HELM_DATA_HOME": str(self._home / "data"),
            "KUBECONFIG": str(self._home / "no-kubeconfig"),
        }

    def close(self) -> None:
        shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> Helm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version(self) -> str:
        return self.run(["version", "--short"]).stdout.strip()

    def run(self, args: Sequence[str], *, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run helm; raises :class:`HelmError` on a non-zero exit."""
        argv = [str(self.binary), *args]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=self.env, check=False
        )
        if done.returncode != 0:
            raise HelmError(argv, done.returncode, done.stdout, done.stderr)
        return done

    def _values_args(self, values: Mapping[str, Any] | None, workdir: Path) -> list[str]:
        if values is None:
            return []
        path = workdir / "values.yaml"
        path.write_text(yaml.safe_dump(dict(values), sort_keys=False))
        return ["--values", str(path)]

    def template(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        chart: Path = CHART,
        release: str = "dns",
        namespace: str = "node-dns",
        extra_args: Sequence[str] = (),
    ) -> Rendered:
        """``helm template`` with a values file; the rendered objects."""
        with tempfile.TemporaryDirectory(prefix="node-dns-values-") as tmp:
            args = [
                "template",
                release,
                str(chart),
                "--namespace",
                namespace,
                "--kube-version",
                self.kube_version,
                *self._values_args(values, Path(tmp)),
                *extra_args,
            ]
            out = self.run(args).stdout
        return Rendered([obj for obj in yaml.safe_load_all(out) if obj])

    def lint(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        chart: Path = CHART,
        strict: bool = True,
        extra_args: Sequence[str] = (),
    ) -> str:
        """``helm lint`` (``--strict`` by default); its output."""
        with tempfile.TemporaryDirectory(prefix="node-dns-values-") as tmp:
            args = [
                "lint",
                str(chart),
                "--kube-version",
                self.kube_version,
                *(["--strict"] if strict else []),
                *self._values_args(values, Path(tmp)),
                *extra_args,
            ]
            return self.run(args).stdout

    def notes(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        chart: Path = CHART,
        release: str = "dns",
        namespace: str = "node-dns",
    ) -> str:
        """The chart's NOTES.txt as ``helm install`` would print it, without a cluster.

        ``helm template`` does not render NOTES.txt and ``helm install --dry-run`` wants a cluster,
        so this renders a copy of the chart in which a ConfigMap carries ``tpl`` of the notes.
        """
        with tempfile.TemporaryDirectory(prefix="node-dns-notes-") as tmp:
            copy = Path(tmp) / chart.name
            shutil.copytree(chart, copy)
            notes = copy / "templates" / "NOTES.txt"
            (copy / "notes-under-test.txt").write_text(notes.read_text())
            notes.unlink()
            (copy / "templates" / "zz-notes-under-test.yaml").write_text(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-under-test\n"
                'data:\n  notes: {{ tpl (.Files.Get "notes-under-test.txt") . | quote }}\n'
            )
            rendered = self.template(
                values,
                chart=copy,
                release=release,
                namespace=namespace,
                extra_args=["--show-only", "templates/zz-notes-under-test.yaml"],
            )
        text: str = rendered.one("ConfigMap", "notes-under-test")["data"]["notes"]
        return text
