"""State shared by all listener protocol instances: live connections, limits, error throttling."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("node_dns.transports")


class Connection(Protocol):
    last_activity: float

    def shutdown(self) -> None: ...

    def abort(self) -> None: ...


@dataclass
class TransportState:
    idle_timeout: float = 10.0
    max_connections: int = 1024
    max_queries: int = 0
    """Queries per connection before it closes; 0 means no cap."""
    connections: set[Connection] = field(default_factory=set)
    refused_connections: int = 0
    internal_errors: int = 0
    _last_error_log: float = 0.0

    def report_error(self, where: str, error: BaseException) -> None:
        """A bug in the query path must never flood the log: one traceback a minute at most."""
        self.internal_errors += 1
        now = time.monotonic()
        if now - self._last_error_log >= 60.0:
            self._last_error_log = now
            log.error(
                "internal error answering over %s (%d so far)", where, self.internal_errors, exc_info=error
            )

    def sweep(self, now: float) -> None:
        """Close connections idle longer than the timeout (a timer per message would cost more)."""
        for conn in list(self.connections):
            if now - conn.last_activity > self.idle_timeout:
                conn.abort()
