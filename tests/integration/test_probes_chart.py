"""The chart's probe values: a probe file ConfigMap node-dns accepts, and RBAC only when the
verdicts are shared (probes with leader election), limited to the one ConfigMap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from node_dns.settings import Settings, probe_spec
from tests.harness.helm import Helm, Rendered

REQUIRED: dict[str, Any] = {
    "zone": "lb.example.net",
    "nameservers": [{"name": "ns1.lb.example.net", "ips": ["192.0.2.53"]}],
    "soa": {"email": "hostmaster@example.net"},
}
AREAS = {"home": "https://:443/healthz", "lab": "none", "edge": {"probe": "http://:8080/", "status": "2xx"}}


@pytest.fixture(scope="module")
def helm() -> Iterator[Helm]:
    with Helm() as h:
        yield h


def verdict_roles(rendered: Rendered) -> list[dict[str, Any]]:
    return [r for r in rendered.all("Role") if r["metadata"]["name"].endswith("-probe-verdicts")]


def test_no_probes_render_no_probe_objects(helm: Helm) -> None:
    rendered = helm.template({**REQUIRED, "leaderElection": {"enabled": True}})
    assert verdict_roles(rendered) == []
    assert not [c for c in rendered.all("ConfigMap") if c["metadata"]["name"].endswith("-probes")]
    assert not {k for k in rendered.env() if k.startswith("NODE_DNS_PROBE_FILE")}


def test_the_probe_file_configmap_is_one_node_dns_accepts(helm: Helm, tmp_path: Path) -> None:
    rendered = helm.template({**REQUIRED, "probes": {"default": "tcp:443", "areas": AREAS}})
    data = next(c for c in rendered.all("ConfigMap") if c["metadata"]["name"].endswith("-probes"))["data"]
    (tmp_path / "probes.yaml").write_text(data["probes.yaml"])
    assert rendered.env()["NODE_DNS_PROBE_FILE"] == "/etc/node-dns/probes/probes.yaml"
    settings = Settings(**{**_flat(rendered), "probe_file": str(tmp_path / "probes.yaml")})
    plan = probe_spec.plan(settings)
    assert plan.for_area("home").short == "https://:443/healthz"  # type: ignore[union-attr]
    assert plan.for_area("lab") is None
    assert plan.for_area("other").short == "tcp:443"  # type: ignore[union-attr]
    assert yaml.safe_load(data["probes.yaml"])["areas"]["edge"]["status"] == "2xx"


def _flat(rendered: Rendered) -> dict[str, Any]:
    env = rendered.env()
    return {
        "zone": env["NODE_DNS_ZONE"],
        "nameservers": env["NODE_DNS_NAMESERVERS"],
        "soa_email": env["NODE_DNS_SOA_EMAIL"],
    }


def test_without_leader_election_no_write_is_granted(helm: Helm) -> None:
    rendered = helm.template({**REQUIRED, "config": {"probe": "tcp:443"}})
    assert verdict_roles(rendered) == []
    assert "NODE_DNS_PROBE_VERDICTS_NAME" not in rendered.env()


def test_shared_verdicts_get_one_namespaced_role_for_one_configmap(helm: Helm) -> None:
    rendered = helm.template(
        {**REQUIRED, "config": {"probe": "tcp:443"}, "leaderElection": {"enabled": True}},
        namespace="dns-system",
    )
    (role,) = verdict_roles(rendered)
    name = rendered.env()["NODE_DNS_PROBE_VERDICTS_NAME"]
    assert role["metadata"]["namespace"] == "dns-system"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [name],
            "verbs": ["get", "list", "watch", "update"],
        },
    ]
    cluster_rules = [rule for r in rendered.all("ClusterRole") for rule in r["rules"]]
    assert not [rule for rule in cluster_rules if "configmaps" in rule.get("resources", [])]
