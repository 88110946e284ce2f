"""Rules for the code's own words: comments and docstrings speak of the project only.

A ticket number in a comment ("see issue 8") means nothing to a reader of the code, and a test
that points at a file outside the repository points at nothing on a fresh clone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p
    for folder in ("node_dns", "tests", "bench")
    for p in (ROOT / folder).rglob("*.py")
    if p != Path(__file__).resolve()  # this module spells out what it looks for
)
TICKET = re.compile(r"\bissues?[ -]?#?[0-9]+\b", re.IGNORECASE)
OUTSIDE = re.compile(r"/work/|\.\./shared|/home/[a-z]")


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", SOURCES, ids=_relative)
def test_no_ticket_numbers_in_the_code(path: Path) -> None:
    hits = [n for n, line in enumerate(path.read_text().splitlines(), 1) if TICKET.search(line)]

    assert hits == [], f"{_relative(path)}: lines {hits} name a ticket; say what the code does instead"


@pytest.mark.parametrize("path", SOURCES, ids=_relative)
def test_no_paths_outside_the_repository(path: Path) -> None:
    hits = [n for n, line in enumerate(path.read_text().splitlines(), 1) if OUTSIDE.search(line)]

    assert hits == [], f"{_relative(path)}: lines {hits} point outside the repository"
