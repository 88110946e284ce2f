"""The one compiled part of node-dns: the batched UDP listener's hot path (optional).

Everything else is declared in pyproject.toml. The extension is optional: where it cannot be
built (no C compiler, no Python headers, not Linux) the install goes on and node-dns answers with
the pure-Python batch, saying so once at start. The build embeds a digest of the C sources, so
``node_dns.transports.accel`` can refuse a build older than the sources next to it.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from setuptools import Extension, setup

SOURCES = ("node_dns/transports/_fastudp.c", "node_dns/transports/_fastkey.c")
HEADERS = ("node_dns/transports/_fastkey.h",)
"""Digested after the sources, in this order (node_dns.transports.accel.SOURCES is the same list)."""


def extensions() -> list[Extension]:
    if not sys.platform.startswith("linux"):  # recvmmsg/sendmmsg
        return []
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join((here / path).read_bytes() for path in SOURCES + HEADERS)).hexdigest()
    return [
        Extension(
            "node_dns.transports._fastudp",
            list(SOURCES),
            depends=list(HEADERS),
            define_macros=[("FASTUDP_SOURCE_DIGEST", f'"{digest}"')],
            extra_compile_args=["-O2", "-Wall", "-Wno-missing-field-initializers", "-fvisibility=hidden"],
            optional=True,
        )
    ]


setup(ext_modules=extensions())
