"""The Helm chart: lint, rendering, schema, RBAC, and the controller running with the chart's identity.

Rendering tests run the real ``helm`` binary from ``tools/build.sh`` and assert on parsed YAML.
Tests marked ``controlplane`` apply the rendered objects to a real kube-apiserver and run node-dns
with a token of the chart's own ServiceAccount: if the chart's RBAC is short of anything the
controller does, the apiserver says 403 and the test sees it.
"""

from __future__ import annotations

import copy
import json
import re
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import pytest
import yaml

from node_dns.settings import Settings
from tests.harness.controlplane import ControlPlane
from tests.harness.helm import CHART, Helm, HelmError, Rendered
from tests.harness.kube import Kube, wait_for
from tests.harness.logs import denials
from tests.harness.nodedns import NodeDns

REPO = CHART.parents[1]

REQUIRED: dict[str, Any] = {
    "zone": "lb.example.net",
    "nameservers": [
        {"name": "ns1.lb.example.net", "ips": ["192.0.2.53", "2001:db8::53"]},
        {"name": "ns2.example.org"},
    ],
    "soa": {"email": "hostmaster@example.net"},
}

# Every feature switched on (the monitoring objects need the prometheus-operator CRDs).
ALL_FEATURES: dict[str, Any] = {
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "dashboard": {"enabled": True},
    "leaderElection": {"enabled": True},
    "services": {"enabled": True, "annotation": "node-dns/service-areas"},
    "hooks": {"hooks": [{"name": "lb", "template": "{{ zone }}", "output": "/run/node-dns/hooks/lb"}]},
    "probes": {"areas": {"home": "https://:443/healthz", "lab": "none"}},
    "transfers": {
        "allow": "key=xfr; 10.0.0.0/8",
        "notify": "192.0.2.7:53+key=xfr",
        "tsig": {"existingSecret": "node-dns-tsig", "keyKey": "tsig-key"},
    },
}

# The metrics the alerts and the dashboard are built on, as the brief and node_dns.sinks name them.
ALERT_METRICS = {
    "node_dns_dns_responses_total",
    "node_dns_dns_requests_total",
    "node_dns_watch_last_event_timestamp_seconds",
    "node_dns_watch_events_total",
    "node_dns_zone_serial",
    "node_dns_nodes",
}

# Fail-open visibility: on the dashboard, not alerted on (it is a safeguard working as meant).
DASHBOARD_ONLY_METRICS = {
    "node_dns_area_healthy_nodes",
    "node_dns_area_nodes",
    "node_dns_area_failed_open",
    "node_dns_service_failed_open",
}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


def merged(base: Mapping[str, Any], *overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep merge of value dicts: later dicts win, nested dicts merge, lists replace."""
    result = copy.deepcopy(dict(base))
    for override in overrides:
        for key, value in override.items():
            if isinstance(value, Mapping) and isinstance(result.get(key), dict):
                result[key] = merged(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
    return result


def values(*overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The required values plus overrides."""
    return merged(REQUIRED, *overrides)


def snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


@pytest.fixture(scope="session")
def helm() -> Iterator[Helm]:
    with Helm() as h:
        yield h


@pytest.fixture(scope="session")
def default_render(helm: Helm) -> Rendered:
    """Defaults plus the required values."""
    return helm.template(values())


@pytest.fixture(scope="session")
def chart_defaults() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def cluster_role_rules(rendered: Rendered) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = rendered.one("ClusterRole")["rules"]
    return rules


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Rules flattened to (apiGroup, resource, verb) triples."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# --- lint ----------------------------------------------------------------------------------------


def test_lint_strict_passes_with_the_required_values(helm: Helm) -> None:
    helm.lint(values())


def test_lint_strict_passes_with_every_feature_enabled(helm: Helm) -> None:
    helm.lint(values(ALL_FEATURES, {"service": {"type": "LoadBalancer"}}))


def test_lint_fails_on_the_bare_chart_naming_every_required_value(helm: Helm) -> None:
    with pytest.raises(HelmError) as failure:
        helm.lint()

    output = failure.value.stdout + failure.value.stderr
    for path in ("/zone", "/nameservers", "/soa/email"):
        assert path in output


# --- required values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"zone": ""}, "/zone"),
        ({"nameservers": []}, "/nameservers"),
        ({"soa": {"email": ""}}, "/soa/email"),
    ],
    ids=["zone", "nameservers", "soa.email"],
)
def test_schema_rejects_a_missing_required_value_and_names_it(
    helm: Helm, override: dict[str, Any], named: str
) -> None:
    with pytest.raises(HelmError) as failure:
        helm.template(values(override))

    assert named in failure.value.stderr
    assert "schema" in failure.value.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"zone": ""}, "zone is required"),
        ({"nameservers": []}, "nameservers is required"),
        ({"soa": {"email": ""}}, "soa.email is required"),
    ],
    ids=["zone", "nameservers", "soa.email"],
)
def test_templates_require_each_value_even_without_the_schema(
    helm: Helm, override: dict[str, Any], message: str
) -> None:
    with pytest.raises(HelmError) as failure:
        helm.template(values(override), extra_args=["--skip-schema-validation"])

    assert message in failure.value.stderr


# --- schema ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"replicas": "two"}, "/replicas"),
        ({"zone": "not a zone"}, "/zone"),
        ({"nameservers": "ns1.example.org"}, "/nameservers"),
        ({"nameservers": [{"name": "ns1.example.org", "ips": "192.0.2.1"}]}, "/nameservers/0/ips"),
        ({"nameservers": [{"ips": ["192.0.2.1"]}]}, "/nameservers/0"),
        ({"soa": {"email": "hostmaster"}}, "/soa/email"),
        ({"soa": {"refresh": "1h"}}, "/soa/refresh"),
        ({"config": {"recordTtl": "thirty"}}, "/config/recordTtl"),
        ({"config": {"recordTtl": -1}}, "/config/recordTtl"),
        ({"config": {"logLevel": "verbose"}}, "/config/logLevel"),
        ({"config": {"cordonedHealthy": "yes"}}, "/config/cordonedHealthy"),
        ({"config": {"noSuchSetting": 1}}, "/config"),
        ({"leaderElection": {"enabled": "true"}}, "/leaderElection/enabled"),
        ({"service": {"type": "ExternalName"}}, "/service/type"),
        ({"service": {"nodePorts": {"udp": "53"}}}, "/service/nodePorts/udp"),
        ({"prometheusRule": {"rules": {"highServfailRate": {"threshold": 5}}}}, "/prometheusRule"),
        ({"replica": 3}, "replica"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_schema_rejects_wrong_types_and_names_the_value(
    helm: Helm, override: dict[str, Any], path: str
) -> None:
    with pytest.raises(HelmError) as failure:
        helm.template(values(override))

    assert path in failure.value.stderr


# --- what the defaults render ------------------------------------------------------------------------


def test_defaults_render_only_the_core_objects(default_render: Rendered) -> None:
    assert default_render.kinds() == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "Service",
        "ServiceAccount",
    ]


def test_every_object_carries_the_standard_labels(default_render: Rendered) -> None:
    for obj in default_render:
        labels = obj["metadata"]["labels"]
        missing = [key for key in STANDARD_LABELS if key not in labels]
        assert not missing, f"{obj['kind']} {obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == "dns"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_namespaced_objects_go_to_the_release_namespace(default_render: Rendered) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for obj in default_render:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == "node-dns", obj["kind"]


def test_cluster_role_grants_exactly_get_list_watch_on_nodes_by_default(default_render: Rendered) -> None:
    assert grants(cluster_role_rules(default_render)) == {
        ("", "nodes", "get"),
        ("", "nodes", "list"),
        ("", "nodes", "watch"),
    }


def test_defaults_render_no_namespaced_roles(default_render: Rendered) -> None:
    assert default_render.all("Role") == []
    assert default_render.all("RoleBinding") == []


def test_cluster_role_binding_binds_the_chart_service_account(default_render: Rendered) -> None:
    binding = default_render.one("ClusterRoleBinding")
    account = default_render.one("ServiceAccount")

    assert binding["roleRef"]["name"] == default_render.one("ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "node-dns"}
    ]


def test_deployment_runs_as_the_chart_service_account(default_render: Rendered) -> None:
    pod = default_render.one("Deployment")["spec"]["template"]["spec"]

    assert pod["serviceAccountName"] == default_render.one("ServiceAccount")["metadata"]["name"]


def test_deployment_runs_two_replicas_spread_over_nodes(default_render: Rendered) -> None:
    deployment = default_render.one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (constraint,) = pod["topologySpreadConstraints"]

    assert deployment["spec"]["replicas"] == 2
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert constraint["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_rolling_update_never_drops_below_the_desired_pods(default_render: Rendered) -> None:
    strategy = default_render.one("Deployment")["spec"]["strategy"]

    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_selector_matches_the_pod_labels(default_render: Rendered) -> None:
    deployment = default_render.one("Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    assert selector.items() <= pod_labels.items()


def test_probes_hit_healthz_and_readyz_on_the_http_port(default_render: Rendered) -> None:
    container = default_render.container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert ports["http"] == 8080


def test_container_is_locked_down(default_render: Rendered) -> None:
    pod = default_render.one("Deployment")["spec"]["template"]["spec"]
    context = default_render.container()["securityContext"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsNonRoot"] is True
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_container_has_resource_requests_and_a_memory_limit(default_render: Rendered) -> None:
    resources = default_render.container()["resources"]

    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


def test_container_runs_serve(default_render: Rendered) -> None:
    container = default_render.container()

    assert container["args"] == ["serve"]
    assert "command" not in container  # the image's ENTRYPOINT (node-dns) stays


def test_image_tag_defaults_to_the_app_version_which_is_the_package_version(
    default_render: Rendered,
) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    assert chart["appVersion"] == project["version"]
    assert default_render.container()["image"].endswith(f":{chart['appVersion']}")


def test_image_digest_takes_precedence_over_the_tag(helm: Helm) -> None:
    digest = "sha256:" + "ab" * 32
    rendered = helm.template(values({"image": {"tag": "9.9.9", "digest": digest}}))

    assert rendered.container()["image"] == f"ghcr.io/node-dns/node-dns@{digest}"


def test_pdb_selects_the_pods_and_allows_one_down(default_render: Rendered) -> None:
    pdb = default_render.one("PodDisruptionBudget")
    deployment = default_render.one("Deployment")

    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_pdb_min_available_replaces_max_unavailable(helm: Helm) -> None:
    rendered = helm.template(values({"podDisruptionBudget": {"minAvailable": "50%"}}))
    spec = rendered.one("PodDisruptionBudget")["spec"]

    assert spec["minAvailable"] == "50%"
    assert "maxUnavailable" not in spec


# --- services ------------------------------------------------------------------------------------


def dns_service(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("Service", "dns-node-dns")


def test_dns_service_maps_udp_and_tcp_53_to_the_container_dns_port(default_render: Rendered) -> None:
    service = dns_service(default_render)
    container_ports = {p["name"]: p for p in default_render.container()["ports"]}
    by_protocol = {p["protocol"]: p for p in service["spec"]["ports"]}

    assert service["spec"]["type"] == "ClusterIP"
    assert set(by_protocol) == {"UDP", "TCP"}
    for protocol, port in by_protocol.items():
        target = container_ports[port["targetPort"]]
        assert port["port"] == 53
        assert (target["containerPort"], target["protocol"]) == (5353, protocol)


def test_dns_service_selects_the_pods(default_render: Rendered) -> None:
    pod_labels = default_render.one("Deployment")["spec"]["template"]["metadata"]["labels"]

    assert dns_service(default_render)["spec"]["selector"].items() <= pod_labels.items()


def test_metrics_service_is_cluster_internal_and_targets_the_http_port(default_render: Rendered) -> None:
    service = default_render.one("Service", "dns-node-dns-metrics")
    (port,) = service["spec"]["ports"]

    assert service["spec"]["type"] == "ClusterIP"
    assert (port["name"], port["port"], port["targetPort"]) == ("http-metrics", 8080, "http")


def test_dns_service_does_not_expose_metrics(default_render: Rendered) -> None:
    assert {p["targetPort"] for p in dns_service(default_render)["spec"]["ports"]} == {"dns-udp", "dns-tcp"}


def test_cluster_ip_service_ignores_node_ports_and_traffic_policy(helm: Helm) -> None:
    rendered = helm.template(
        values({"service": {"nodePorts": {"udp": 30053}, "externalTrafficPolicy": "Local"}})
    )
    spec = dns_service(rendered)["spec"]

    assert "externalTrafficPolicy" not in spec
    assert all("nodePort" not in port for port in spec["ports"])


def test_fixed_cluster_ip_is_rendered(helm: Helm) -> None:
    rendered = helm.template(values({"service": {"clusterIP": "10.0.0.53"}}))

    assert dns_service(rendered)["spec"]["clusterIP"] == "10.0.0.53"


def test_load_balancer_service_carries_its_settings(helm: Helm) -> None:
    rendered = helm.template(
        values(
            {
                "service": {
                    "type": "LoadBalancer",
                    "loadBalancerIP": "192.0.2.10",
                    "loadBalancerSourceRanges": ["198.51.100.0/24"],
                    "externalTrafficPolicy": "Local",
                    "annotations": {"example.com/lb-kind": "nlb"},
                }
            }
        )
    )
    service = dns_service(rendered)

    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerIP"] == "192.0.2.10"
    assert service["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    assert service["spec"]["externalTrafficPolicy"] == "Local"
    assert service["metadata"]["annotations"] == {"example.com/lb-kind": "nlb"}


def test_node_port_service_uses_the_given_node_ports(helm: Helm) -> None:
    rendered = helm.template(
        values(
            {
                "service": {
                    "type": "NodePort",
                    "nodePorts": {"udp": 30053, "tcp": 30054},
                    "externalTrafficPolicy": "Cluster",
                }
            }
        )
    )
    spec = dns_service(rendered)["spec"]

    assert spec["type"] == "NodePort"
    assert {p["protocol"]: p["nodePort"] for p in spec["ports"]} == {"UDP": 30053, "TCP": 30054}
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert "loadBalancerIP" not in spec


# --- controller settings -------------------------------------------------------------------------


def test_required_values_reach_the_controller_environment(default_render: Rendered) -> None:
    env = default_render.env()

    assert env["NODE_DNS_ZONE"] == "lb.example.net"
    assert env["NODE_DNS_NAMESERVERS"] == "ns1.lb.example.net=192.0.2.53,2001:db8::53; ns2.example.org"
    assert env["NODE_DNS_SOA_EMAIL"] == "hostmaster@example.net"


def test_rendered_environment_is_accepted_by_the_controller_settings(
    default_render: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in default_render.env().items():
        monkeypatch.setenv(name, value)

    settings = Settings()  # type: ignore[call-arg]

    assert settings.zone == "lb.example.net"
    assert [ns.name for ns in settings.nameservers] == ["ns1.lb.example.net", "ns2.example.org"]
    assert [str(ip) for ip in settings.nameservers[0].ips] == ["192.0.2.53", "2001:db8::53"]
    assert settings.dns_port == 5353
    assert settings.http_port == 8080


def test_every_rendered_setting_names_a_controller_setting(default_render: Rendered) -> None:
    known = {f"NODE_DNS_{name.upper()}" for name in Settings.model_fields}

    assert set(default_render.env()) - known == set()


def test_every_config_value_names_a_controller_setting(chart_defaults: dict[str, Any]) -> None:
    keys = [snake(k) for k in chart_defaults["config"]] + [f"soa_{snake(k)}" for k in chart_defaults["soa"]]

    assert [k for k in keys if k not in Settings.model_fields] == []


def test_every_controller_setting_can_be_set_from_the_chart(
    helm: Helm, chart_defaults: dict[str, Any]
) -> None:
    """A setting added to node_dns/settings.py needs a chart value (config.<camelCase> usually)."""
    rendered = helm.template(values(ALL_FEATURES, {"services": {"namespaces": ["web"]}}))
    settable = set(rendered.env()) | set(rendered.env_from_fields())
    settable |= {e["name"] for e in rendered.container()["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    settable |= {f"NODE_DNS_{snake(key).upper()}" for key in chart_defaults["config"]}
    # In a pod the controller uses its in-cluster config: no kubeconfig path to set.
    not_for_pods = {"NODE_DNS_KUBECONFIG"}
    expected = {f"NODE_DNS_{name.upper()}" for name in Settings.model_fields} - not_for_pods

    missing = sorted(expected - settable)
    assert not missing, f"add these to charts/node-dns values.yaml and values.schema.json: {missing}"


def test_whole_numbers_render_as_integers(helm: Helm) -> None:
    env = helm.template(
        values({"soa": {"expire": 2147483647}, "config": {"tcpMaxConnections": 1000000}})
    ).env()

    assert env["NODE_DNS_SOA_EXPIRE"] == "2147483647"
    assert env["NODE_DNS_TCP_MAX_CONNECTIONS"] == "1000000"


def test_fractional_numbers_keep_their_fraction(helm: Helm) -> None:
    env = helm.template(values({"config": {"tcpIdleTimeout": 2.5}})).env()

    assert env["NODE_DNS_TCP_IDLE_TIMEOUT"] == "2.5"


def test_null_setting_is_left_to_the_controller_default(helm: Helm) -> None:
    env = helm.template(values({"config": {"recordTtl": None}})).env()

    assert "NODE_DNS_RECORD_TTL" not in env


def test_empty_list_setting_is_left_to_the_controller_default(default_render: Rendered) -> None:
    assert "NODE_DNS_RRL_EXEMPT" not in default_render.env()


def test_map_setting_renders_as_area_equals_ips(helm: Helm) -> None:
    env = helm.template(
        values(
            {"config": {"staticRecords": {"web": ["203.0.113.10", "2001:db8::10"], "api": ["198.51.100.1"]}}}
        )
    ).env()

    assert env["NODE_DNS_STATIC_RECORDS"] == "api=198.51.100.1; web=203.0.113.10,2001:db8::10"


def test_rendered_lists_and_maps_parse_in_the_controller_settings(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "staticRecords": {"web": ["203.0.113.10", "2001:db8::10"]},
        "rrlExempt": ["10.0.0.0/8", "fd00::/8"],
        "ipSources": ["external", "internal"],
    }
    rendered = helm.template(values({"config": config}))
    for name, value in rendered.env().items():
        monkeypatch.setenv(name, value)

    settings = Settings()  # type: ignore[call-arg]
    dumped = settings.model_dump(mode="json")

    for key, expected in config.items():
        field = snake(key)
        if field in dumped:  # settings another part of the project is still adding
            assert dumped[field] == (list(expected) if isinstance(expected, list) else expected)


def test_list_setting_renders_comma_separated(helm: Helm) -> None:
    env = helm.template(values({"config": {"rrlExempt": ["10.0.0.0/8", "fd00::/8"]}})).env()

    assert env["NODE_DNS_RRL_EXEMPT"] == "10.0.0.0/8,fd00::/8"


def test_container_ports_follow_the_configured_ports(helm: Helm) -> None:
    rendered = helm.template(values({"config": {"dnsPort": 10053, "httpPort": 9090}}))
    ports = {p["name"]: p["containerPort"] for p in rendered.container()["ports"]}

    assert ports == {"dns-udp": 10053, "dns-tcp": 10053, "http": 9090}
    assert rendered.env()["NODE_DNS_DNS_PORT"] == "10053"


def test_extra_env_and_args_are_passed_through(helm: Helm) -> None:
    rendered = helm.template(
        values(
            {
                "extraEnv": [{"name": "NODE_DNS_SOME_NEW_SETTING", "value": "1"}],
                "extraArgs": ["--log-level=debug"],
            }
        )
    )

    assert rendered.env()["NODE_DNS_SOME_NEW_SETTING"] == "1"
    assert rendered.container()["args"] == ["serve", "--log-level=debug"]


# --- leader election -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def leader_render(helm: Helm) -> Rendered:
    return helm.template(values({"leaderElection": {"enabled": True}}))


def test_leader_election_grants_lease_access_in_the_release_namespace(leader_render: Rendered) -> None:
    role = leader_render.one("Role", "dns-node-dns-leader-election")

    assert role["metadata"]["namespace"] == "node-dns"
    assert grants(role["rules"]) == {
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "update"),
    }


def test_leader_election_limits_reading_and_renewing_to_its_own_lease(leader_render: Rendered) -> None:
    role = leader_render.one("Role", "dns-node-dns-leader-election")
    named = [rule for rule in role["rules"] if "resourceNames" in rule]

    assert [(rule["resourceNames"], sorted(rule["verbs"])) for rule in named] == [
        (["dns-node-dns"], ["get", "update"])
    ]


def test_leader_election_may_record_events_in_the_default_namespace_only(leader_render: Rendered) -> None:
    role = leader_render.one("Role", "dns-node-dns-events")

    assert role["metadata"]["namespace"] == "default"
    assert grants(role["rules"]) == {("", "events", "create")}


def test_leader_election_roles_are_bound_to_the_chart_service_account(leader_render: Rendered) -> None:
    for binding in leader_render.all("RoleBinding"):
        role = leader_render.one("Role", binding["roleRef"]["name"])
        assert role["metadata"]["namespace"] == binding["metadata"]["namespace"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "dns-node-dns", "namespace": "node-dns"}
        ]


def test_leader_election_does_not_widen_the_cluster_role(leader_render: Rendered) -> None:
    assert {resource for _, resource, _ in grants(cluster_role_rules(leader_render))} == {"nodes"}


def test_leader_election_takes_identity_and_namespace_from_the_pod(leader_render: Rendered) -> None:
    env = leader_render.env()

    assert leader_render.env_from_fields() == {
        "NODE_DNS_LEADER_IDENTITY": "metadata.name",
        "NODE_DNS_LEADER_LEASE_NAMESPACE": "metadata.namespace",
    }
    assert env["NODE_DNS_LEADER_ELECT"] == "true"
    assert env["NODE_DNS_LEADER_LEASE_NAME"] == "dns-node-dns"
    assert env["NODE_DNS_LEADER_RECORD_EVENTS"] == "true"
    assert (env["NODE_DNS_LEADER_LEASE_DURATION"], env["NODE_DNS_LEADER_RENEW_DEADLINE"]) == ("15", "10")
    assert env["NODE_DNS_LEADER_RETRY_PERIOD"] == "2"


def test_leader_election_without_event_recording_grants_no_events(helm: Helm) -> None:
    rendered = helm.template(values({"leaderElection": {"enabled": True, "recordEvents": False}}))

    assert [role["metadata"]["name"] for role in rendered.all("Role")] == ["dns-node-dns-leader-election"]
    assert rendered.env()["NODE_DNS_LEADER_RECORD_EVENTS"] == "false"


def test_leader_election_off_sets_no_leader_settings(default_render: Rendered) -> None:
    assert [name for name in default_render.env() if name.startswith("NODE_DNS_LEADER_")] == []


def test_custom_lease_name_is_used_in_env_and_role(helm: Helm) -> None:
    rendered = helm.template(values({"leaderElection": {"enabled": True, "leaseName": "dns-leader"}}))
    role = rendered.one("Role", "dns-node-dns-leader-election")

    assert rendered.env()["NODE_DNS_LEADER_LEASE_NAME"] == "dns-leader"
    assert ["dns-leader"] in [rule.get("resourceNames") for rule in role["rules"]]


# --- records from Services -----------------------------------------------------------------------


def test_services_off_sets_no_service_settings(default_render: Rendered) -> None:
    assert [name for name in default_render.env() if name.startswith("NODE_DNS_SERVICE")] == []


def test_services_on_turns_the_service_source_on(helm: Helm) -> None:
    env = helm.template(values({"services": {"enabled": True, "annotation": "example.com/expose"}})).env()

    assert env["NODE_DNS_SERVICES"] == "true"
    assert env["NODE_DNS_SERVICE_ANNOTATION"] == "example.com/expose"
    assert "NODE_DNS_SERVICE_NAMESPACES" not in env


def test_services_in_all_namespaces_add_read_access_to_the_cluster_role(helm: Helm) -> None:
    rendered = helm.template(values({"services": {"enabled": True}}))

    assert grants(cluster_role_rules(rendered)) == {
        (group, resource, verb)
        for group, resource in [("", "nodes"), ("", "services"), ("discovery.k8s.io", "endpointslices")]
        for verb in ("get", "list", "watch")
    }


def test_services_in_listed_namespaces_use_one_role_each(helm: Helm) -> None:
    rendered = helm.template(values({"services": {"enabled": True, "namespaces": ["web", "api"]}}))
    roles = rendered.all("Role")

    assert {role["metadata"]["namespace"] for role in roles} == {"web", "api"}
    assert {r for _, r, _ in grants(roles[0]["rules"])} == {"services", "endpointslices"}
    assert {r for _, r, _ in grants(cluster_role_rules(rendered))} == {"nodes"}
    assert rendered.env()["NODE_DNS_SERVICE_NAMESPACES"] == "web,api"


# --- monitoring ------------------------------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service(helm: Helm) -> None:
    rendered = helm.template(
        values({"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}})
    )
    monitor = rendered.one("ServiceMonitor")
    metrics = rendered.one("Service", "dns-node-dns-metrics")
    dns = dns_service(rendered)
    selector = monitor["spec"]["selector"]["matchLabels"]

    assert selector.items() <= metrics["metadata"]["labels"].items()
    assert not selector.items() <= dns["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == metrics["spec"]["ports"][0]["name"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["node-dns"]}
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


@pytest.fixture(scope="session")
def alerts(helm: Helm) -> dict[str, dict[str, Any]]:
    rule = helm.template(values({"prometheusRule": {"enabled": True}})).one("PrometheusRule")
    (group,) = rule["spec"]["groups"]
    return {r["alert"]: r for r in group["rules"]}


def test_prometheus_rule_has_the_four_alerts(alerts: dict[str, dict[str, Any]]) -> None:
    assert set(alerts) == {
        "NodeDnsNoReadyReplicas",
        "NodeDnsHighServfailRate",
        "NodeDnsWatchStale",
        "NodeDnsSerialStuck",
    }


def test_every_alert_has_severity_summary_and_description(alerts: dict[str, dict[str, Any]]) -> None:
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        assert alert["annotations"]["summary"], name
        assert alert["annotations"]["description"], name


@pytest.mark.parametrize(
    ("alert", "metrics"),
    [
        ("NodeDnsHighServfailRate", {"node_dns_dns_responses_total", "node_dns_dns_requests_total"}),
        ("NodeDnsWatchStale", {"node_dns_watch_last_event_timestamp_seconds", "node_dns_nodes"}),
        ("NodeDnsSerialStuck", {"node_dns_zone_serial", "node_dns_nodes"}),
        ("NodeDnsNoReadyReplicas", {"kube_deployment_status_replicas_available"}),
    ],
)
def test_alert_uses_the_right_metrics(
    alerts: dict[str, dict[str, Any]], alert: str, metrics: set[str]
) -> None:
    used = set(re.findall(r"\b(node_dns_\w+|kube_\w+)\{", alerts[alert]["expr"]))

    assert used == metrics


def test_alert_expressions_select_this_release(alerts: dict[str, dict[str, Any]]) -> None:
    for name, alert in alerts.items():
        for selector in re.findall(r"\{([^{}]*)\}", alert["expr"]):
            assert 'namespace="node-dns"' in selector, name


def test_alert_expressions_have_balanced_brackets(alerts: dict[str, dict[str, Any]]) -> None:
    for name, alert in alerts.items():
        depth = {"(": 0, "{": 0, "[": 0}
        closing = {")": "(", "}": "{", "]": "["}
        for char in alert["expr"]:
            if char in depth:
                depth[char] += 1
            elif char in closing:
                depth[closing[char]] -= 1
                assert depth[closing[char]] >= 0, name
        assert set(depth.values()) == {0}, name


def test_alert_thresholds_come_from_values(helm: Helm) -> None:
    rule = helm.template(
        values(
            {
                "prometheusRule": {
                    "enabled": True,
                    "rules": {
                        "highServfailRate": {"threshold": 0.2},
                        "watchStale": {"seconds": 1800},
                        "serialStuck": {"enabled": False},
                    },
                    "additionalLabels": {"team": "dns"},
                }
            }
        )
    ).one("PrometheusRule")
    found = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}

    assert "NodeDnsSerialStuck" not in found
    assert ") > 0.2" in found["NodeDnsHighServfailRate"]["expr"]
    assert "> 1800" in found["NodeDnsWatchStale"]["expr"]
    assert all(r["labels"]["team"] == "dns" for r in found.values())


def test_dashboard_config_map_is_labelled_for_the_grafana_sidecar(helm: Helm) -> None:
    config_map = helm.template(values({"dashboard": {"enabled": True}})).one("ConfigMap")

    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_dashboard_is_valid_json_using_the_controller_metrics(helm: Helm) -> None:
    config_map = helm.template(values({"dashboard": {"enabled": True}})).one("ConfigMap")
    (text,) = config_map["data"].values()
    dashboard = json.loads(text)
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))

    assert dashboard["uid"] == "node-dns"
    assert set(re.findall(r"\bnode_dns_\w+", exprs)) == ALERT_METRICS | DASHBOARD_ONLY_METRICS
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


# --- NOTES.txt -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def notes(helm: Helm) -> str:
    return helm.notes(values({"service": {"clusterIP": "10.0.0.53"}}))


def test_notes_print_a_coredns_server_block_forwarding_to_the_service(notes: str) -> None:
    block = re.search(r"^lb\.example\.net:53 \{\n(.*?)^\}", notes, re.MULTILINE | re.DOTALL)

    assert block is not None, notes
    assert "forward . 10.0.0.53:53" in block.group(1)


def test_notes_print_a_cname_example_in_the_parent_zone(notes: str) -> None:
    assert re.search(r"^\S+\.example\.net\.\s+\d+\s+IN\s+CNAME\s+<area>\.lb\.example\.net\.$", notes, re.M)


def test_notes_print_the_delegation_with_glue_for_in_zone_name_servers(notes: str) -> None:
    lines = [line.split(";")[0].split() for line in notes.splitlines()]

    assert ["lb.example.net.", "3600", "IN", "NS", "ns2.example.org."] in lines
    assert ["ns1.lb.example.net.", "3600", "IN", "A", "192.0.2.53"] in lines
    assert ["ns1.lb.example.net.", "3600", "IN", "AAAA", "2001:db8::53"] in lines


def test_notes_tell_how_to_find_an_allocated_cluster_ip(helm: Helm) -> None:
    text = helm.notes(values())

    assert "forward . <CLUSTER-IP>:53" in text
    assert "get service dns-node-dns -o jsonpath='{.spec.clusterIP}'" in text


def test_notes_warn_about_a_single_replica(helm: Helm) -> None:
    assert "WARNING: replicas is 1" in helm.notes(values({"replicas": 1}))


# --- against a real apiserver --------------------------------------------------------------------


def apiserver_objects(rendered: Rendered, namespace: str) -> list[dict[str, Any]]:
    """The release namespace first, then the rendered objects an apiserver without CRDs serves."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    served = [obj for obj in rendered if not obj["apiVersion"].startswith("monitoring.coreos.com/")]
    return [ns, *served]


@pytest.mark.controlplane
@pytest.mark.parametrize(
    "features",
    [
        {},
        merged(ALL_FEATURES, {"services": {"namespaces": ["default"]}}),
        {"service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}},
        {"service": {"type": "NodePort", "nodePorts": {"udp": 31053, "tcp": 31054}}},
    ],
    ids=["defaults", "all-features", "load-balancer", "node-port"],
)
def test_rendered_manifests_pass_the_apiservers_strict_validation(
    helm: Helm, kube: Kube, unique_name: Callable[[str], str], features: dict[str, Any]
) -> None:
    namespace = unique_name("chart")
    rendered = helm.template(values(features), release=namespace, namespace=namespace)

    created = kube.apply_manifests(apiserver_objects(rendered, namespace))

    assert sorted(obj["kind"] for obj in created) == sorted(
        obj["kind"] for obj in apiserver_objects(rendered, namespace)
    )


@pytest.fixture(scope="module")
def audited_plane() -> Iterator[ControlPlane]:
    """A control plane of this module's own that writes an audit log, to count 403s exactly."""
    with ControlPlane(audit=True) as plane:
        yield plane


def forbidden_requests(plane: ControlPlane, username: str) -> list[str]:
    return [
        f"{e['verb']} {e['requestURI']}"
        for e in plane.audit_events()
        if e.get("user", {}).get("username") == username and e.get("responseStatus", {}).get("code") == 403
    ]


def query_a(address: tuple[str, int], name: str) -> set[str]:
    response = dns.query.udp(
        dns.message.make_query(name, dns.rdatatype.A), address[0], port=address[1], timeout=2
    )
    return {item.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for item in rrset}


def run_chart_identity(
    plane: ControlPlane, helm: Helm, features: Mapping[str, Any], wait: float
) -> tuple[str, str, str, set[str], str]:
    """Install the chart's objects, run node-dns as its ServiceAccount, resolve one area.

    Returns the ServiceAccount's username, the namespace, the controller's logs, the A records of
    the area, and the /metrics text.
    """
    kube = plane.kube
    suffix = uuid.uuid4().hex[:8]
    namespace, area, node = f"chart-{suffix}", f"web-{suffix}", f"node-{suffix}"
    chart_values = values(features)
    rendered = helm.template(chart_values, release=namespace, namespace=namespace)
    kube.apply_manifests(apiserver_objects(rendered, namespace))
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    kubeconfig = kube.kubeconfig_for_token(kube.mint_token(namespace, account), user=f"chart-{suffix}")
    config = chart_values.get("config", {})
    areas_key = config.get("areasAnnotation", "node-dns/areas")
    ips_key = config.get("ipsAnnotation", "node-dns/ips")
    kube.create_node(node, annotations={areas_key: area, ips_key: "203.0.113.7"})

    # The pod's environment as rendered; the harness sets loopback addresses and free ports.
    env = {
        k: v
        for k, v in rendered.env().items()
        if k
        not in {"NODE_DNS_DNS_ADDRESS", "NODE_DNS_DNS_PORT", "NODE_DNS_HTTP_ADDRESS", "NODE_DNS_HTTP_PORT"}
    }
    downward = {"metadata.name": f"{namespace}-pod-0", "metadata.namespace": namespace}
    env |= {name: downward[path] for name, path in rendered.env_from_fields().items()}
    try:
        with NodeDns(
            kubeconfig,
            zone=chart_values["zone"],
            nameservers=env["NODE_DNS_NAMESERVERS"],
            soa_email=chart_values["soa"]["email"],
            areas_annotation=areas_key,
            ips_annotation=ips_key,
            env=env,
        ) as proc:
            name = f"{area}.{chart_values['zone']}."
            answer = wait_for(
                lambda: query_a(proc.dns_address, name), timeout=15, what=f"A records of {name}"
            )
            # Give periodic work (lease renewals, event recording) a moment to show a missing grant.
            time.sleep(min(max(wait, 0.0), 30.0))
            _, metrics = proc.http_get("/metrics", timeout=5)
            logs = proc.logs()
    finally:
        kube.delete_node(node, missing_ok=True)
    return f"system:serviceaccount:{namespace}:{account}", namespace, logs, answer, metrics


@pytest.mark.controlplane
@pytest.mark.parametrize(
    "features",
    [
        {},
        {"services": {"enabled": True}},
        {"services": {"enabled": True, "namespaces": ["default"]}},
    ],
    ids=["defaults", "services-all-namespaces", "services-one-namespace"],
)
def test_controller_with_the_chart_identity_serves_dns_without_403s(
    audited_plane: ControlPlane, helm: Helm, features: dict[str, Any]
) -> None:
    username, _, logs, answer, _ = run_chart_identity(audited_plane, helm, features, wait=2.0)

    assert answer == {"203.0.113.7"}
    assert forbidden_requests(audited_plane, username) == []
    assert not denials(logs), logs


@pytest.mark.controlplane
def test_controller_exposes_every_metric_the_alerts_and_dashboard_use(
    audited_plane: ControlPlane, helm: Helm
) -> None:
    _, _, _, _, metrics = run_chart_identity(audited_plane, helm, {}, wait=0.0)
    sampled = set(re.findall(r"^(node_dns_\w+?)(?:\{| )", metrics, re.MULTILINE))
    # labelled gauges with no sample yet (nothing failed open) still declare their family
    declared = set(re.findall(r"^# TYPE (node_dns_\w+) gauge$", metrics, re.MULTILINE))

    assert ALERT_METRICS - sampled == set()
    assert DASHBOARD_ONLY_METRICS - sampled - declared == set()


@pytest.mark.controlplane
def test_controller_with_leader_election_needs_no_more_than_the_chart_grants(
    audited_plane: ControlPlane, helm: Helm
) -> None:
    username, namespace, logs, answer, _ = run_chart_identity(
        audited_plane, helm, {"leaderElection": {"enabled": True}}, wait=5.0
    )

    assert answer == {"203.0.113.7"}
    assert forbidden_requests(audited_plane, username) == []
    assert not denials(logs), logs
    if "leader_elect" in Settings.model_fields:  # once the controller elects a leader
        leases = audited_plane.kube.call(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        )["items"]
        assert [lease["metadata"]["name"] for lease in leases] == [namespace + "-node-dns"]


# --- zone transfers --------------------------------------------------------------------------------
def test_tsig_keys_come_from_an_existing_secret_never_from_values(helm: Helm) -> None:
    rendered = helm.template(
        values({"transfers": {"allow": "key=xfr", "tsig": {"existingSecret": "tsig", "keyKey": "k"}}})
    )
    env = {e["name"]: e for e in rendered.container()["env"]}
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]

    assert env["NODE_DNS_TSIG_KEYS_FILE"]["value"] == "/etc/node-dns/tsig/tsig.conf"
    assert env["NODE_DNS_TSIG_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "tsig", "key": "k"}}
    assert env["NODE_DNS_TRANSFER_ALLOW"]["value"] == "key=xfr"
    volume = next(v for v in pod["volumes"] if v["name"] == "tsig")
    assert volume["secret"]["secretName"] == "tsig" and volume["secret"]["defaultMode"] == 0o400
    mount = next(m for m in rendered.container()["volumeMounts"] if m["name"] == "tsig")
    assert mount == {"name": "tsig", "mountPath": "/etc/node-dns/tsig", "readOnly": True}


def test_without_transfers_nothing_is_allowed_and_no_secret_is_mounted(helm: Helm) -> None:
    rendered = helm.template(values())

    assert "NODE_DNS_TRANSFER_ALLOW" not in rendered.env() and "NODE_DNS_TSIG_KEYS_FILE" not in rendered.env()
    assert all(v["name"] != "tsig" for v in rendered.one("Deployment")["spec"]["template"]["spec"]["volumes"])


def test_the_service_tcp_port_can_differ_for_transfers(helm: Helm) -> None:
    rendered = helm.template(values({"service": {"tcpPort": 5300}}))
    dns = next(s for s in rendered.all("Service") if any(p["name"] == "dns-tcp" for p in s["spec"]["ports"]))
    ports = {p["name"]: p["port"] for p in dns["spec"]["ports"]}

    assert ports == {"dns-udp": 53, "dns-tcp": 5300}
