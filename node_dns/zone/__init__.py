"""Zone layer: facts in, immutable snapshots out. Nothing here does I/O.

The flow, one module per step:

- ``store``: the facts (Nodes, Services, EndpointSlices) under the resourceVersion rules, and
  what each change touched. A new kind of fact is indexed here.
- ``policy``: which nodes a name is served from (health, probe verdicts, fail-open). A new
  health input is a field of :class:`~node_dns.zone.policy.Policy`.
- ``config``: what the zone needs from the settings (:class:`~node_dns.zone.config.ZoneConfig`).
- ``build`` (with ``records`` for the wire encoding): pure; facts, policy and config in, a
  :class:`~node_dns.zone.snapshot.Snapshot` out, incrementally from the previous one.
- ``serial``: when the SOA serial moves and to what.
- ``writer``: the one writer the sources feed; it publishes through ``publish``, whose
  subscribers get (old, new). Outputs (the answer path, zone transfers, render hooks) subscribe
  there; ``diff`` gives them the RRsets removed and added, ``journal`` keeps them for IXFR.
- ``dump`` and ``explain``: the zone as text, for people.
"""
