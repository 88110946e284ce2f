"""The container image, built for real and run from its own filesystem.

``built_image()`` builds the repository's Dockerfile with ``tools/image.sh`` (podman, chroot
isolation; the base from ``tools/base-image.sh``, built from Debian packages) under a tag that is a
hash of every input of the build, so an unchanged tree reuses the image, like ``make tools`` reuses
its binaries.

``ImageRoot`` runs commands from the image. Where ``podman run`` works it is used as is; where it
does not (this sandbox forbids the rlimit changes its runtime makes), the image is mounted
(``podman image mount``) and entered the way a container runtime would: a private mount namespace,
the image's root bind-mounted read-only, fresh ``/proc``, a tmpfs on ``/tmp`` (the chart's emptyDir)
and ``/run``, then ``tests/harness/enter_image.py`` does what runc does: chroot, bounding set cut to the
pod's added capabilities, the image's numeric user, permitted/effective set to those capabilities,
``no_new_privs`` (``allowPrivilegeEscalation: false``), exec. The process shares the host's
network, as a ``hostNetwork`` pod does, so it reaches the test apiserver on loopback.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from tests.harness.controlplane import REPO_ROOT, make_workdir

BUILD_TIMEOUT = 1800.0  # a cold build bootstraps Debian and downloads every wheel
USER = "10001:10001"
# What the build reads (tools/image.sh, its base, the Dockerfile's COPY sources): a change to any
# of them is a new image.
INPUT_FILES = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "README.md",
    "tools/image.sh",
    "tools/base-image.sh",
    "tools/versions.env",
)
INPUT_DIRS = ("image", "node_dns")
BUILD_LOG = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "node-dns" / "image" / "builds.log"
)


class ImageError(RuntimeError):
    """The image did not build, or a command could not be run from it."""


def inputs_key() -> str:
    """A hash of every file the image build reads."""
    digest = hashlib.sha256()
    paths = [REPO_ROOT / name for name in INPUT_FILES]
    for top in INPUT_DIRS:
        paths += sorted(
            p
            for p in (REPO_ROOT / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
        )
    for path in paths:
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def podman(*args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise ImageError(f"podman {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


@functools.cache
def built_image() -> str:
    """The image of the current tree: built once per change of its inputs, then reused."""
    tag = f"localhost/node-dns:test-{inputs_key()}"
    if image_exists(tag):
        return tag
    start = time.monotonic()
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "image.sh"), tag],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        # Always the Debian-built base: the image tested (and its size) is the same on every machine,
        # with or without a registry.
        env={**os.environ, "IMAGE_ENGINE": "podman", "PYTHON_IMAGE": "debian"},
        check=False,
    )
    if done.returncode != 0:
        raise ImageError(f"tools/image.sh exited {done.returncode}:\n{done.stderr[-4000:]}")
    _forget_older_test_images(keep=tag)
    BUILD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with BUILD_LOG.open("a") as log:
        summary = done.stderr.strip().splitlines()[-1]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        log.write(f"{stamp} {time.monotonic() - start:.0f}s {summary}\n")
    return tag


def _forget_older_test_images(keep: str) -> None:
    """Remove the images of earlier trees built over two hours ago, so test images do not pile up.

    Younger ones may belong to another test run going on now (main and a branch have different
    trees). The build's layer cache (the dependency layers) stays for the next build, and an
    image still mounted is left alone (``podman rmi`` refuses).
    """
    listed = podman(
        "images",
        "--filter=reference=localhost/node-dns:test-*",
        "--filter=until=2h",
        "--format={{.Repository}}:{{.Tag}}",
        check=False,
    ).stdout.split()
    for old in listed:
        if old != keep:
            podman("rmi", old, check=False)


def inspect(tag: str) -> dict[str, Any]:
    """``podman image inspect`` of ``tag``."""
    found: list[dict[str, Any]] = json.loads(podman("image", "inspect", tag).stdout)
    return found[0]


@functools.cache
def podman_run_works() -> bool:
    """Whether ``podman run`` can start a container on this machine at all."""
    done = podman("run", "--rm", "--network=host", built_image(), "--version", check=False, timeout=120)
    return done.returncode == 0


class ImageRoot:
    """Commands run from the image's own filesystem, read-only, as its non-root user.

    ``binds`` maps host directories to paths under ``/run`` inside the image (read-only), e.g. a
    kubeconfig. ``command(argv)`` returns the host command line that runs ``argv`` in the image;
    ``env()`` the environment the image declares (its ``ENV``), to start it with.
    """

    def __init__(self, tag: str, *, binds: Mapping[Path, str] | None = None) -> None:
        self.tag = tag
        self.binds = dict(binds or {})
        self.config = inspect(tag)["Config"]
        self.user = str(self.config.get("User") or USER)
        self.image_id = ""
        self._mounted: Path | None = None
        self._workdir: Path | None = None

    def __enter__(self) -> Self:
        # By id: another run may remove the tag meanwhile (built_image() drops older test tags).
        self.image_id = str(inspect(self.tag)["Id"])
        self._mounted = Path(podman("image", "mount", self.image_id).stdout.strip())
        self._workdir = make_workdir("node-dns-image-")
        return self

    def __exit__(self, *exc: object) -> None:
        podman("image", "unmount", self.image_id, check=False)
        self._mounted = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    @property
    def mounted(self) -> Path:
        if self._mounted is None:
            raise ImageError("ImageRoot is not entered")
        return self._mounted

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        declared = dict(item.split("=", 1) for item in self.config.get("Env") or [])
        return {**declared, **(extra or {})}

    def command(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        entrypoint: Sequence[str] | None = None,
        keep_caps: Iterable[str] = (),
        network: bool = True,
    ) -> list[str]:
        """The host argv that runs ``entrypoint + argv`` inside the image.

        Start it with the environment ``self.env(env)``. ``entrypoint`` defaults to the image's
        ENTRYPOINT. ``keep_caps`` names the capabilities a pod's ``capabilities.add`` would give
        (bounding, permitted, effective), e.g. ``["net_bind_service"]``; every other one is
        dropped. ``network=False`` runs it in an empty network namespace (no interface at all).
        """
        if self._workdir is None:
            raise ImageError("ImageRoot is not entered")
        if podman_run_works():
            return self._podman_run(
                argv, env=env, entrypoint=entrypoint, keep_caps=keep_caps, network=network
            )
        root = self._workdir / "root"
        root.mkdir(exist_ok=True)
        full = [*(entrypoint if entrypoint is not None else self.config["Entrypoint"]), *argv]
        uid, _, gid = self.user.partition(":")
        q = shlex.quote
        script = [
            "set -e",
            f"mount --bind {q(str(self.mounted))} {q(str(root))}",
            f"mount -o remount,bind,ro {q(str(root))}",
            f"mount -t proc proc {q(str(root / 'proc'))}",
            f"mount --rbind /dev {q(str(root / 'dev'))}",
            f"mount -t tmpfs -o size=16m,mode=1777 tmpfs {q(str(root / 'tmp'))}",
            f"mount -t tmpfs -o size=1m,mode=755 tmpfs {q(str(root / 'run'))}",
        ]
        for host, inside in self.binds.items():
            target = root / "run" / inside.removeprefix("/run/").lstrip("/")
            script += [f"mkdir -p {q(str(target))}", f"mount --bind -o ro {q(str(host))} {q(str(target))}"]
        launcher = Path(__file__).with_name("enter_image.py")
        script.append(
            f"exec {q(sys.executable)} {q(str(launcher))} {q(str(root))} {uid} {gid or uid} "
            f"{q(','.join(keep_caps))} -- " + " ".join(q(a) for a in full)
        )
        isolate = [] if network else ["--net"]
        return [
            "unshare",
            "--mount",
            *isolate,
            "--propagation",
            "private",
            "--fork",
            "--",
            "sh",
            "-c",
            "\n".join(script),
        ]

    def _podman_run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None,
        entrypoint: Sequence[str] | None,
        keep_caps: Iterable[str],
        network: bool,
    ) -> list[str]:
        """The same, where ``podman run`` works: its own read-only, non-root, capability-less run."""
        command = [
            "podman",
            "run",
            "--rm",
            "--network=host" if network else "--network=none",
            "--read-only",
            f"--user={self.user}",
            "--cap-drop=all",
            "--security-opt=no-new-privileges",
            "--tmpfs=/tmp:size=16m",
        ]
        command += [f"--cap-add={c}" for c in keep_caps]
        command += [f"--volume={host}:{inside}:ro" for host, inside in self.binds.items()]
        command += [f"--env={k}={v}" for k, v in (env or {}).items()]
        if entrypoint is not None:
            command += [f"--entrypoint={json.dumps(list(entrypoint))}"]
        return [*command, self.tag, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        entrypoint: Sequence[str] | None = None,
        keep_caps: Iterable[str] = (),
        network: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` from the image to completion; its exit code and output."""
        return subprocess.run(
            self.command(argv, env=env, entrypoint=entrypoint, keep_caps=keep_caps, network=network),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(env),
            check=False,
        )
