"""Reading node-dns's own log output in tests.

Each line starts with ``%(asctime)s``, whose milliseconds (``,403``) look like an HTTP status to a
plain search; the helpers here look at the part after the timestamp only.
"""

from __future__ import annotations

import re

_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
_DENIAL = re.compile(r"\b403\b|forbidden", re.IGNORECASE)


def message(line: str) -> str:
    """``line`` without its leading timestamp, if it has one."""
    return _STAMP.sub("", line, count=1)


def denials(logs: str) -> list[str]:
    """The lines of ``logs`` whose message reports a refusal by the apiserver (403 / Forbidden)."""
    return [line for line in logs.splitlines() if _DENIAL.search(message(line))]
