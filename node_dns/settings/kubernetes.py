"""Kubernetes access settings: where the credentials come from."""

from __future__ import annotations

from pydantic import Field

from node_dns.settings.group import Group, chart


class KubernetesSettings(Group):
    """How node-dns reaches the apiserver. Whether the kubeconfig can be read is checked at startup."""

    title = "Kubernetes access"

    kubeconfig: str | None = Field(
        None,
        description=(
            "Path(s) to a kubeconfig (':'-separated). Unset: the pod's service account, else "
            "$KUBECONFIG or ~/.kube/config. Exec plugins and auth providers are supported."
        ),
        json_schema_extra=chart(None),
    )
