"""node-dns: authoritative DNS for Kubernetes node areas.

The only module that imports names; everything inside imports modules. Data flows one way:
sources (kopf node handlers) -> zone (immutable snapshots) -> answer (pure) -> transports/sinks.
The names below load on first use, so ``node-dns agent`` (the same package) never imports the
server's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node_dns.version import __version__

if TYPE_CHECKING:
    from node_dns.cli import main, run
    from node_dns.settings import Settings

__all__ = ["Settings", "__version__", "main", "run"]


def __getattr__(name: str) -> Any:
    if name in ("main", "run"):
        from node_dns import cli

        return getattr(cli, name)
    if name == "Settings":
        from node_dns.settings import Settings

        return Settings
    raise AttributeError(f"module 'node_dns' has no attribute {name!r}")
