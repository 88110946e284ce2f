"""Settings of the node agent (``node-dns agent``): which addresses it publishes, and where.

The one definition of the agent's settings: its own group below, plus the settings it shares
with the controller (:mod:`node_dns.settings.common`: the annotation it writes, Kubernetes
access, logging). Declared as plain :class:`~node_dns.settings.spec.Setting` values, not a
pydantic model: the agent runs on every node and must stay small (see
:mod:`node_dns.settings.spec`). Flags, env vars and error lines are the controller's
(``--agent-max-addresses``, ``NODE_DNS_AGENT_MAX_ADDRESSES``, one line naming both, exit 2).
In the chart its own settings are ``agent.config.<name without agent_, camelCase>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from node_dns.settings import spec
from node_dns.settings.common import DISCOVERED_ANNOTATION, KUBERNETES, LOGGING
from node_dns.settings.spec import Section, Setting

DEFAULT_EXCLUDE = (
    "lo",
    "cni*",
    "flannel*",
    "cali*",
    "veth*",
    "docker*",
    "wg*",
    "tailscale*",
    "kube-ipvs*",
    "cilium*",
    "lxc*",
    "tunl*",
    "vxlan*",
    "weave*",
    "podman*",
    "virbr*",
    "nodelocaldns",
)
"""Loopback and the links of overlay networks, CNIs, container runtimes and VPN meshes."""

FAMILIES = ("ipv4", "ipv6")


def _node_name(value: str) -> str:
    name = value.strip()
    if not 0 < len(name) <= 253:
        raise ValueError("must be a node name (1 to 253 characters)")
    return name


def _patterns(value: str) -> tuple[str, ...]:
    found = spec.split_list(value)
    for pattern in found:
        if len(pattern) > 64 or "/" in pattern:
            raise ValueError(f"{pattern!r} is not an interface name pattern")
    return tuple(dict.fromkeys(found))


def _networks(value: str) -> tuple[str, ...]:
    return spec.networks(spec.split_list(value))


def _families(value: str) -> tuple[str, ...]:
    found = spec.split_list(value)
    if not found:
        raise ValueError("at least one family is required (ipv4, ipv6)")
    for family in found:
        if family not in FAMILIES:
            raise ValueError(f"{family!r} is not a family (ipv4, ipv6)")
    return tuple(dict.fromkeys(found))


NODE_NAME = Setting(
    "node_name",
    None,
    "The node this agent runs on. Unset: $NODE_NAME (the chart sets it from spec.nodeName).",
    _node_name,
    nullable=True,
)

AGENT = Section(
    "Node agent (node-dns agent)",
    "The node agent: which of the node's interface addresses it publishes, and its HTTP port.",
    (
        NODE_NAME,
        DISCOVERED_ANNOTATION,
        Setting(
            "agent_interfaces",
            ("*",),
            "Interface name patterns (globs, comma separated) whose addresses count.",
            _patterns,
            kind=tuple,
            many=True,
            chart="agent.config.interfaces",
        ),
        Setting(
            "agent_exclude_interfaces",
            DEFAULT_EXCLUDE,
            "Interface name patterns never read; wins over --agent-interfaces. Default: loopback "
            "and overlay, CNI, container and VPN links.",
            _patterns,
            kind=tuple,
            many=True,
            chart="agent.config.excludeInterfaces",
        ),
        Setting(
            "agent_allowed_networks",
            (),
            "Networks (CIDRs) whose addresses count although they are not globally reachable, "
            "for LAN-only setups. Loopback and link-local addresses never count.",
            _networks,
            kind=tuple,
            many=True,
            chart="agent.config.allowedNetworks",
        ),
        Setting(
            "agent_families",
            FAMILIES,
            "Address families to publish (ipv4, ipv6).",
            _families,
            kind=tuple,
            many=True,
            choices=FAMILIES,
            chart="agent.config.families",
        ),
        Setting(
            "agent_temporary_addresses",
            False,
            "Publish temporary (privacy) IPv6 addresses too; they rotate, so default: no.",
            spec.boolean,
            kind=bool,
            chart="agent.config.temporaryAddresses",
        ),
        Setting(
            "agent_max_addresses",
            16,
            "At most this many addresses, the families taking turns.",
            spec.integer(1, 1024),
            kind=int,
            minimum=1,
            maximum=1024,
            chart="agent.config.maxAddresses",
        ),
        Setting(
            "agent_reassert_interval",
            300.0,
            "Seconds between re-reads of the node that put the annotation back if someone else "
            "changed it. Address changes are published at once, without waiting for this.",
            spec.number(10, 86400),
            kind=float,
            minimum=10,
            maximum=86400,
            chart="agent.config.reassertInterval",
        ),
        Setting(
            "agent_http_address",
            "127.0.0.1",
            "Address of the agent's /healthz and /metrics (on the host's network).",
            spec.ip_text,
            chart="agent.config.httpAddress",
        ),
        Setting(
            "agent_http_port",
            0,
            "Port of the agent's /healthz and /metrics; 0: no HTTP server.",
            spec.integer(0, 65535),
            kind=int,
            minimum=0,
            maximum=65535,
            chart="agent.config.httpPort",
        ),
    ),
)

SECTIONS = (AGENT, KUBERNETES, LOGGING)
"""The settings of ``node-dns agent``, in the order its ``--help`` shows them."""
SETTINGS = tuple(setting for section in SECTIONS for setting in section.settings)


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """The values of every setting of ``node-dns agent`` (attributes named as the settings)."""

    node_name: str | None
    discovered_annotation: str
    agent_interfaces: tuple[str, ...]
    agent_exclude_interfaces: tuple[str, ...]
    agent_allowed_networks: tuple[str, ...]
    agent_families: tuple[str, ...]
    agent_temporary_addresses: bool
    agent_max_addresses: int
    agent_reassert_interval: float
    agent_http_address: str
    agent_http_port: int
    kubeconfig: str | None
    log_level: str
    log_json: bool


def load(flags: Mapping[str, str | bool | None], environ: Mapping[str, str]) -> AgentSettings:
    """The agent's settings from its flags (by setting name; None: not given) and environment.

    Raises :class:`~node_dns.settings.errors.SettingError` naming the first invalid setting.
    """
    return AgentSettings(**spec.read(SETTINGS, flags, environ))
