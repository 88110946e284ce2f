"""Settings of the node agent (``node-dns agent``): which addresses it publishes, and where.

The agent is its own command with its own model, :class:`AgentCommandSettings`: its group
below, the annotation it writes (the same ``--discovered-annotation`` setting the controller
reads, one definition), Kubernetes access and logging. In the chart its settings are
``agent.config.<name without agent_, camelCase>``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

from node_dns.settings import errors
from node_dns.settings.group import Group, chart
from node_dns.settings.kubernetes import KubernetesSettings
from node_dns.settings.logs import LogSettings
from node_dns.settings.nodes import NodeSettings
from node_dns.settings.values import IpText, networks, split_list

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

Family = Literal["ipv4", "ipv6"]
Patterns = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_list)]


def _agent(name: str) -> dict[str, Any]:
    return chart(f"agent.config.{name}")


class AgentSettings(Group):
    """The node agent: which of the node's interface addresses it publishes, and its HTTP port."""

    title = "Node agent (node-dns agent)"

    node_name: str | None = Field(
        None,
        description=(
            "The node this agent runs on. Unset: $NODE_NAME (the chart sets it from spec.nodeName)."
        ),
        json_schema_extra=chart(None),
    )
    agent_interfaces: Patterns = Field(
        ("*",),
        description="Interface name patterns (globs, comma separated) whose addresses count.",
        json_schema_extra=_agent("interfaces"),
    )
    agent_exclude_interfaces: Patterns = Field(
        DEFAULT_EXCLUDE,
        description=(
            "Interface name patterns never read; wins over --agent-interfaces. Default: loopback "
            "and overlay, CNI, container and VPN links."
        ),
        json_schema_extra=_agent("excludeInterfaces"),
    )
    agent_allowed_networks: Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_list)] = Field(
        (),
        description=(
            "Networks (CIDRs) whose addresses count although they are not globally reachable, "
            "for LAN-only setups. Loopback and link-local addresses never count."
        ),
        json_schema_extra=_agent("allowedNetworks"),
    )
    agent_families: Annotated[tuple[Family, ...], NoDecode, BeforeValidator(split_list)] = Field(
        ("ipv4", "ipv6"),
        description="Address families to publish (ipv4, ipv6).",
        json_schema_extra=_agent("families"),
    )
    agent_temporary_addresses: bool = Field(
        False,
        description="Publish temporary (privacy) IPv6 addresses too; they rotate, so default: no.",
        json_schema_extra=_agent("temporaryAddresses"),
    )
    agent_max_addresses: int = Field(
        16,
        ge=1,
        le=1024,
        description="At most this many addresses, the families taking turns.",
        json_schema_extra=_agent("maxAddresses"),
    )
    agent_reassert_interval: float = Field(
        300.0,
        ge=10,
        le=86400,
        allow_inf_nan=False,
        description=(
            "Seconds between re-reads of the node that put the annotation back if someone else "
            "changed it. Address changes are published at once, without waiting for this."
        ),
        json_schema_extra=_agent("reassertInterval"),
    )
    agent_http_address: IpText = Field(
        "127.0.0.1",
        description="Address of the agent's /healthz and /metrics (on the host's network).",
        json_schema_extra=_agent("httpAddress"),
    )
    agent_http_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the agent's /healthz and /metrics; 0: no HTTP server.",
        json_schema_extra=_agent("httpPort"),
    )

    @field_validator("agent_interfaces", "agent_exclude_interfaces")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if len(pattern) > 64 or "/" in pattern:
                raise ValueError(f"{pattern!r} is not an interface name pattern")
        return tuple(dict.fromkeys(value))

    @field_validator("agent_allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return networks(value)

    @field_validator("agent_families")
    @classmethod
    def _families(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one family is required (ipv4, ipv6)")
        return tuple(dict.fromkeys(value))

    @field_validator("node_name")
    @classmethod
    def _node_name(cls, value: str | None) -> str | None:
        if value is not None and not (0 < len(value.strip()) <= 253):
            raise ValueError("must be a node name (1 to 253 characters)")
        return value.strip() if value is not None else None


class AgentCommandSettings(AgentSettings, KubernetesSettings, LogSettings, BaseSettings):
    """Everything ``node-dns agent`` reads: its group, the annotation, Kubernetes access, logs."""

    model_config = errors.MODEL_CONFIG

    discovered_annotation: Annotated[str, NodeSettings.model_fields["discovered_annotation"]] = (
        NodeSettings.model_fields["discovered_annotation"].get_default()
    )


AGENT_GROUPS: tuple[type[Group], ...] = (AgentSettings, KubernetesSettings, LogSettings)
"""The groups of the agent command, in the order ``node-dns agent --help`` shows them."""
