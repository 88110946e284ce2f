"""Node source settings: which annotations and status fields turn a Node into areas and IPs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from node_dns.settings.common import DISCOVERED_ANNOTATION
from node_dns.settings.group import Group
from node_dns.settings.selector import label_selector
from node_dns.settings.values import AnnotationKey, split_list

IpSource = Literal["annotation", "discovered", "external", "internal"]


class NodeSettings(Group):
    """How Nodes are read: the annotations naming areas and IPs, the IP sources, re-list period."""

    title = "Node source"

    areas_annotation: AnnotationKey = Field(
        "node-dns/areas", description="Node annotation listing the node's areas (comma separated)."
    )
    ips_annotation: AnnotationKey = Field(
        "node-dns/ips", description="Node annotation listing the node's external IPs (comma separated)."
    )
    discovered_annotation: AnnotationKey = Field(
        DISCOVERED_ANNOTATION.default, description=DISCOVERED_ANNOTATION.description
    )
    """Shared with the node agent: defined in :mod:`node_dns.settings.common`."""
    ip_sources: Annotated[tuple[IpSource, ...], NoDecode, BeforeValidator(split_list)] = Field(
        ("annotation",),
        description=(
            "Where a node's IPs come from, in order: annotation (--ips-annotation), discovered "
            "(--discovered-annotation, written by the node agent), external (status ExternalIP), "
            "internal (status InternalIP). The first source that yields an address wins; the "
            "others are not mixed in."
        ),
    )
    node_selector: str = Field(
        "",
        description=(
            "Serve only nodes matching this label selector (kubectl -l syntax, e.g. "
            "'node-dns/serve=true,!node-role.kubernetes.io/control-plane'), applied by the "
            "apiserver to the watch and the lists. A node that stops matching leaves the zone "
            "as a deleted node does. Empty: all nodes."
        ),
    )
    resync_interval: float = Field(
        300.0,
        ge=5,
        le=86400,
        description=(
            "Seconds between full re-lists that reconcile the zone against the apiserver, so nodes "
            "deleted while a watch was down cannot linger."
        ),
    )

    @field_validator("ip_sources")
    @classmethod
    def _ip_sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one source is required (annotation, discovered, external, internal)")
        if len(set(value)) != len(value):
            raise ValueError("each source may appear once")
        return value

    @field_validator("discovered_annotation")
    @classmethod
    def _own_key(cls, value: str, info: ValidationInfo) -> str:
        """The agent may write this key (its admission policy allows it): never a hand-set one."""
        for other in ("ips_annotation", "areas_annotation"):
            if info.data.get(other) == value:
                raise ValueError(f"must differ from --{other.replace('_', '-')} ({value})")
        return value

    @field_validator("node_selector")
    @classmethod
    def _node_selector(cls, value: str) -> str:
        try:
            return label_selector(value)
        except ValueError as error:
            raise ValueError(f"not a label selector: {error}") from None
