"""The SOA serial: when it moves and to what.

It moves exactly when served content moves. Its value is derived from the Kubernetes
resourceVersion of the change that moved content (the list's resourceVersion for a full list),
so replicas that saw the same change agree on it, and a restart never makes it go back. When no
version is known, the clock stands in. It never moves backwards (RFC 1982 arithmetic): a
version that is not newer bumps the current serial by one.
"""

from __future__ import annotations

SERIAL_MODULO = 2**32


def serial_newer(a: int, b: int) -> bool:
    """RFC 1982 serial number arithmetic: is a greater than b?"""
    return a != b and ((a - b) % SERIAL_MODULO) < 2**31


def next_serial(current: int, version: int | None, now: float) -> int:
    """The serial for a content change at ``version`` (None: not known, ``now`` is used)."""
    candidate = version % SERIAL_MODULO if version is not None else int(now) % SERIAL_MODULO
    if serial_newer(candidate, current):
        return candidate
    return (current + 1) % SERIAL_MODULO
