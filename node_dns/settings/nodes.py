"""Node source settings: which annotations and status fields turn a Node into areas and IPs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode

from node_dns.settings.group import Group
from node_dns.settings.values import AnnotationKey, split_list

IpSource = Literal["annotation", "external", "internal"]


class NodeSettings(Group):
    """How Nodes are read: the annotations naming areas and IPs, the IP sources, re-list period."""

    title = "Node source"

    areas_annotation: AnnotationKey = Field(
        "node-dns/areas", description="Node annotation listing the node's areas (comma separated)."
    )
    ips_annotation: AnnotationKey = Field(
        "node-dns/ips", description="Node annotation listing the node's external IPs (comma separated)."
    )
    ip_sources: Annotated[tuple[IpSource, ...], NoDecode, BeforeValidator(split_list)] = Field(
        ("annotation",),
        description=(
            "Where a node's IPs come from, in order: annotation (--ips-annotation), external "
            "(status ExternalIP), internal (status InternalIP). The first source that yields an "
            "address wins; the others are not mixed in."
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
            raise ValueError("at least one source is required (annotation, external, internal)")
        if len(set(value)) != len(value):
            raise ValueError("each source may appear once")
        return value
