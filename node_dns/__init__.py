"""node-dns: authoritative DNS for Kubernetes node areas.

The only module that imports names; everything inside imports modules. Data flows one way:
sources (kopf node handlers) -> zone (immutable snapshots) -> answer (pure) -> transports/sinks.
"""

from node_dns.cli import main, run
from node_dns.settings import Settings
from node_dns.version import __version__

__all__ = ["Settings", "__version__", "main", "run"]
