"""Which batch answers UDP: the compiled one (``_fastudp``) when it is built, current and wanted.

The compiled batch (node_dns/transports/_fastudp.c) answers cache hits without a Python frame and
hands every other datagram back to Python; its answers are the full path's bytes (the property
tests run through both). It is optional: without a C compiler at install time, or with
``NODE_DNS_UDP_PURE_PYTHON=1``, the pure-Python batch answers, with one log line at start saying
why and the ``node_dns_dns_udp_path_info`` metric saying which.

A build is used only if it speaks this module's ABI (the contract: responder.cache_key's layout,
the cache's hit tuples, the histograms' fields, ``BatchedUdp._miss``) and, when its C source is
next to it (a source tree), was compiled from that very source: a stale ``.so`` never answers for
edited code.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ABI = 2
"""Bump together with FASTUDP_ABI in _fastudp.c when the contract changes."""
OFF = "NODE_DNS_UDP_PURE_PYTHON"
"""Set (to anything but "" or "0") to answer with the pure-Python batch."""
SOURCES = tuple(Path(__file__).with_name(name) for name in ("_fastudp.c", "_fastkey.c", "_fastkey.h"))
"""The C sources, in the order setup.py digests them."""
HOW_TO_BUILD = "`make ext` (or `python setup.py build_ext --inplace`) builds it"


@dataclass(frozen=True)
class Choice:
    module: ModuleType | None
    """The compiled module, or None: the pure-Python batch answers."""
    reason: str
    """Why not compiled ("" when it is)."""
    forced: bool = False
    """The pure-Python batch was asked for (no warning then)."""

    @property
    def path(self) -> str:
        """The ``path`` label: "c" or "python"."""
        return "c" if self.module is not None else "python"


@functools.cache
def _digest(paths: tuple[Path, ...]) -> str:
    return hashlib.sha256(b"".join(path.read_bytes() for path in paths)).hexdigest()


def choose(environ: Mapping[str, str] = os.environ) -> Choice:
    """The batch to answer with, and why."""
    if environ.get(OFF, "") not in ("", "0"):
        return Choice(None, f"{OFF} is set", forced=True)
    try:
        from node_dns.transports import _fastudp
    except ImportError as error:
        return Choice(None, f"the compiled batch is not built ({error}); {HOW_TO_BUILD}")
    if _fastudp.ABI != ABI:
        return Choice(None, f"the compiled batch is stale (ABI {_fastudp.ABI}, want {ABI}); {HOW_TO_BUILD}")
    if all(path.is_file() for path in SOURCES) and _digest(SOURCES) != _fastudp.SOURCE_DIGEST:
        names = ", ".join(path.name for path in SOURCES)
        return Choice(None, f"the compiled batch is older than its source ({names}); {HOW_TO_BUILD}")
    return Choice(_fastudp, "")
