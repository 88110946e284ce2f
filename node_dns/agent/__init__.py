"""The node agent (``node-dns agent``): the node's own reachable addresses into one annotation.

Flow: :mod:`~node_dns.agent.netlink` (kernel addresses and change notifications) ->
:mod:`~node_dns.agent.addresses` (pure selection, :mod:`~node_dns.agent.registry` for global
reachability) -> :mod:`~node_dns.agent.publish` (one merge-patched annotation) ->
:mod:`~node_dns.agent.loop` ties them together. See docs/agent.md.
"""
