"""Reachability probes: a source of per-address verdicts ("clients can reach this IP").

Probes only ever remove: the zone policy serves a node's address in an area when the node is
healthy *and* the area's probe of that address passes. The package is split by what each part
may touch:

- :mod:`node_dns.settings.probe_spec` (with the settings that use it): what to probe
  (``tcp:PORT``, ``http://:PORT/PATH``, ``https://...``, ``dns:PORT:NAME``) and the per-area plan.
- :mod:`.machine`: rise/fall per target and the self-fault guard; pure, fed with results and
  an injected ``now``.
- :mod:`.schedule`: when each target is due (interval plus a stable jitter phase); pure.
- :mod:`.reactor`: TCP and DNS probes of many addresses as plain callbacks (one epoll set, one
  UDP socket per family, one deadline heap): no coroutine, task or timer per probe.
- :mod:`.checks`: one probe of one address (HTTP(S) as a small asyncio protocol).
- :mod:`.prober`: the one asyncio loop that schedules probes with bounded concurrency.
- :mod:`.verdicts`: the verdict table every replica answers from, and its wire form.
- :mod:`.source`: targets from node facts, verdict tables into the zone policy.
"""
