"""Service source settings: serving <service>.<namespace>.<zone> for opted-in Services."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode

from node_dns.settings.group import Group, chart
from node_dns.settings.values import AnnotationKey, DnsLabel, split_list


class ServiceSettings(Group):
    """Records for Services: which are served, from which namespaces (and so which RBAC)."""

    title = "Services"

    services: bool = Field(
        False,
        description=(
            "Serve <service>.<namespace>.<zone> for Services opted in by --service-annotation: the "
            "IPs of healthy nodes hosting a ready endpoint. Needs get/list/watch on services and "
            "endpointslices."
        ),
        json_schema_extra=chart("services.enabled"),
    )
    service_annotation: AnnotationKey = Field(
        "node-dns/expose",
        description='Service annotation that opts a Service in when its value is "true".',
        json_schema_extra=chart("services.annotation"),
    )
    service_namespaces: Annotated[tuple[DnsLabel, ...], NoDecode, BeforeValidator(split_list)] = Field(
        (),
        description=(
            "Namespaces whose Services are served (comma separated). Empty: all namespaces "
            "(needs a ClusterRole); otherwise Roles in these namespaces are enough."
        ),
        json_schema_extra=chart("services.namespaces"),
    )

    @field_validator("service_namespaces")
    @classmethod
    def _namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))
