"""Kubernetes access settings: where the credentials come from (defined in
:mod:`node_dns.settings.common`, which the node agent reads too)."""

from __future__ import annotations

from pydantic import Field

from node_dns.settings.common import KUBECONFIG, KUBERNETES
from node_dns.settings.group import Group, chart


class KubernetesSettings(Group):
    __doc__ = KUBERNETES.doc
    title = KUBERNETES.title

    kubeconfig: str | None = Field(
        KUBECONFIG.default, description=KUBECONFIG.description, json_schema_extra=chart(KUBECONFIG.chart)
    )
