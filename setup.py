"""The one compiled part of node-dns: the batched UDP listener's hot path (optional).

Everything else is declared in pyproject.toml. The extension is optional: where it cannot be
built (no C compiler, no Python headers, not Linux) the install goes on and node-dns answers with
the pure-Python batch, saying so once at start. The build embeds a digest of the C source, so
``node_dns.transports.accel`` can refuse a build older than the source next to it.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "node_dns/transports/_fastudp.c"


def extensions() -> list[Extension]:
    if not sys.platform.startswith("linux"):  # recvmmsg/sendmmsg
        return []
    digest = hashlib.sha256((Path(__file__).parent / SOURCE).read_bytes()).hexdigest()
    return [
        Extension(
            "node_dns.transports._fastudp",
            [SOURCE],
            define_macros=[("FASTUDP_SOURCE_DIGEST", f'"{digest}"')],
            extra_compile_args=["-O2", "-Wall", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]


setup(ext_modules=extensions())
