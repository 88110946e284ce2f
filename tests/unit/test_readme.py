"""The README is part of the product: its settings table and resolver configs must match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration import test_resolvers

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_settings_table_matches_the_settings_model() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "settings_table.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def _fixed_lines(template: str) -> list[str]:
    """Lines of a test's config template that hold no per-run placeholder."""
    return [
        line.strip() for line in template.splitlines() if line.strip() and "{" not in line.replace("{{", "")
    ]


def test_readme_shows_the_parent_zone_the_tests_serve() -> None:
    for line in test_resolvers.PARENT_ZONE.splitlines():
        assert line in README


def test_readme_shows_the_corefile_the_tests_run() -> None:
    for line in _fixed_lines(test_resolvers.COREFILE):
        assert line.replace("{{", "{").replace("}}", "}") in README


def test_readme_shows_the_unbound_zones_the_tests_run() -> None:
    stanza = test_resolvers.UNBOUND_CONF[test_resolvers.UNBOUND_CONF.index("auth-zone:") :]
    for line in _fixed_lines(stanza):
        assert line in README
