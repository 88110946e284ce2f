"""image/requirements.lock pins exactly what pyproject.toml asks for (tools/image-lock.py writes it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
FIX = "run tools/image-lock.py to pin the image's dependencies again"


def pins(path: Path) -> dict[str, str]:
    text = path.read_text()
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.MULTILINE)
    }


def hashes_per_pin(path: Path) -> list[int]:
    blocks = re.split(r"^(?=[A-Za-z0-9_.-]+==)", path.read_text(), flags=re.MULTILINE)[1:]
    return [block.count("--hash=sha256:") for block in blocks]


def dependencies() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(spec) for spec in project["dependencies"]]


def test_every_dependency_is_pinned_to_a_version_it_allows() -> None:
    locked = pins(REPO / "image" / "requirements.lock")
    env = {**default_environment(), "sys_platform": "linux", "python_version": "3.11"}

    for requirement in dependencies():
        if requirement.marker is not None and not requirement.marker.evaluate(env):
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in image/requirements.lock: {FIX}"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"image/requirements.lock pins {name}=={locked[name]}, pyproject.toml asks {requirement}: {FIX}"
        )


def test_every_pin_carries_a_hash() -> None:
    for lock in ("requirements.lock", "build.lock"):
        counts = hashes_per_pin(REPO / "image" / lock)
        assert counts and min(counts) >= 1, f"image/{lock}: a pin without --hash: {FIX}"


def test_the_build_tools_are_pinned() -> None:
    assert {"pip", "setuptools", "wheel"} <= set(pins(REPO / "image" / "build.lock"))
