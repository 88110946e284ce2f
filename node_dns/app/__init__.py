"""Assembly: build the zone and every part the settings ask for, bind listeners, start tasks.

The core is :mod:`node_dns.app.server` (:class:`Server`, :func:`start`, and why the start-up
order matters: listeners first, tasks before kopf). The optional parts each have a module:
:mod:`~node_dns.app.udp` (UDP on the loop or in worker processes, rate limits),
:mod:`~node_dns.app.probes`, :mod:`~node_dns.app.hooks`, :mod:`~node_dns.app.leadership`
(with serial agreement between replicas) and :mod:`~node_dns.app.debug` (debug pages);
:mod:`~node_dns.app.zone_setup` is what the server and ``node-dns zone`` share.
"""

from node_dns.app.debug import debug_routes
from node_dns.app.hooks import load_hooks, start_hooks
from node_dns.app.leadership import agree_serials, start_leadership
from node_dns.app.probes import load_probes, start_probes
from node_dns.app.server import Server, start
from node_dns.app.udp import listen_udp, rate_limiter, rate_limits, start_workers
from node_dns.app.zone_setup import new_zone, node_keys

__all__ = [
    "Server",
    "agree_serials",
    "debug_routes",
    "listen_udp",
    "load_hooks",
    "load_probes",
    "new_zone",
    "node_keys",
    "rate_limiter",
    "rate_limits",
    "start",
    "start_hooks",
    "start_leadership",
    "start_probes",
    "start_workers",
]
