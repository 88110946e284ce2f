"""The chart's node agent: a locked-down DaemonSet on the host network with a pod-bound token.

The RBAC and the admission policy are checked against a real apiserver in test_agent_policy.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from node_dns.settings import agent
from tests.harness.helm import CHART, Helm, HelmError, Rendered
from tests.integration.test_chart import values

AGENT = {"agent": {"enabled": True}}


@pytest.fixture(scope="module")
def helm() -> Iterator[Helm]:
    with Helm() as h:
        yield h


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> Rendered:
    return helm.template(values(AGENT))


def pod_spec(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("DaemonSet")["spec"]["template"]["spec"]
    return spec


def agent_container(rendered: Rendered) -> dict[str, Any]:
    container: dict[str, Any] = pod_spec(rendered)["containers"][0]
    return container


def test_agent_is_off_by_default(helm: Helm) -> None:
    assert helm.template(values()).all("DaemonSet") == []


def test_lint_strict_passes_with_the_agent(helm: Helm) -> None:
    helm.lint(values(AGENT))


def test_agent_needs_kubernetes_1_30_for_the_admission_policy(helm: Helm) -> None:
    with pytest.raises(HelmError) as failure:
        helm.run(
            [
                "template",
                "dns",
                str(CHART),
                "--kube-version",
                "v1.29.9",
                "--set",
                "agent.enabled=true",
                "--set",
                "zone=lb.example.net",
                "--set",
                "nameservers[0].name=ns1.example.org",
                "--set",
                "soa.email=h@example.net",
            ]
        )

    assert "agent.enabled needs Kubernetes >= 1.30" in failure.value.stderr


def test_agent_runs_the_agent_subcommand_of_the_same_image(rendered: Rendered) -> None:
    assert agent_container(rendered)["args"] == ["agent"]
    assert agent_container(rendered)["image"] == rendered.container()["image"]


def test_agent_runs_on_the_host_network(rendered: Rendered) -> None:
    spec = pod_spec(rendered)

    assert spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_agent_has_no_capabilities_and_a_read_only_root(rendered: Rendered) -> None:
    context = agent_container(rendered)["securityContext"]

    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in context["capabilities"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["runAsNonRoot"] is True
    assert pod_spec(rendered)["securityContext"]["runAsUser"] == 10001


def test_agent_token_is_projected_and_bound_to_the_pod(rendered: Rendered) -> None:
    spec = pod_spec(rendered)
    volume = next(v for v in spec["volumes"] if v["name"] == "token")
    sources = volume["projected"]["sources"]
    mount = next(m for m in agent_container(rendered)["volumeMounts"] if m["name"] == "token")

    assert spec["automountServiceAccountToken"] is False
    assert {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}} in sources
    assert mount == {
        "name": "token",
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        "readOnly": True,
    }


def test_agent_runs_as_its_own_service_account(rendered: Rendered) -> None:
    account = rendered.one("ServiceAccount", "dns-node-dns-agent")

    assert pod_spec(rendered)["serviceAccountName"] == "dns-node-dns-agent"
    assert account["automountServiceAccountToken"] is False


def test_agent_learns_its_node_name_from_the_downward_api(rendered: Rendered) -> None:
    env = {e["name"]: e for e in agent_container(rendered)["env"]}

    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["NODE_DNS_DISCOVERED_ANNOTATION"]["value"] == "node-dns/discovered-ips"


def test_agent_tolerates_every_taint_and_selects_linux_nodes(rendered: Rendered) -> None:
    spec = pod_spec(rendered)

    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_agent_has_requests_and_a_memory_limit(rendered: Rendered) -> None:
    resources = agent_container(rendered)["resources"]

    assert resources["requests"] == {"cpu": "5m", "memory": "32Mi"}
    assert resources["limits"] == {"memory": "64Mi"}


def test_agent_opens_no_port_by_default(rendered: Rendered) -> None:
    container = agent_container(rendered)

    assert "ports" not in container
    assert "livenessProbe" not in container


def test_agent_http_port_is_a_host_port_probed_when_not_on_loopback(helm: Helm) -> None:
    config = {"httpPort": 9481, "httpAddress": "0.0.0.0"}
    container = agent_container(helm.template(values({"agent": {"enabled": True, "config": config}})))

    assert container["ports"] == [
        {"name": "http", "containerPort": 9481, "hostPort": 9481, "protocol": "TCP"}
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_agent_settings_render_as_agent_environment(helm: Helm) -> None:
    config = {"allowedNetworks": ["192.168.1.0/24"], "maxAddresses": 4, "families": ["ipv6"]}
    container = agent_container(helm.template(values({"agent": {"enabled": True, "config": config}})))
    env = {e["name"]: e.get("value") for e in container["env"]}

    assert env["NODE_DNS_AGENT_ALLOWED_NETWORKS"] == "192.168.1.0/24"
    assert env["NODE_DNS_AGENT_MAX_ADDRESSES"] == "4"
    assert env["NODE_DNS_AGENT_FAMILIES"] == "ipv6"
    assert "NODE_DNS_AGENT_INTERFACES" not in env  # null: the agent's own default


def test_agent_pods_are_never_selected_by_the_controller(rendered: Rendered) -> None:
    labels = rendered.one("DaemonSet")["spec"]["template"]["metadata"]["labels"]
    selectors = [rendered.one("Deployment")["spec"]["selector"]["matchLabels"]]
    selectors += [service["spec"]["selector"] for service in rendered.all("Service")]

    for selector in selectors:
        assert not all(labels.get(key) == value for key, value in selector.items()), selector


def test_the_policy_and_the_agent_follow_the_discovered_annotation_setting(helm: Helm) -> None:
    key = "example.net/public-ips"
    rendered = helm.template(values(AGENT, {"config": {"discoveredAnnotation": key}}))
    policy = rendered.one("ValidatingAdmissionPolicy")
    agent_env = {e["name"]: e.get("value") for e in agent_container(rendered)["env"]}

    assert {"name": "key", "expression": f'"{key}"'} in policy["spec"]["variables"]
    assert agent_env["NODE_DNS_DISCOVERED_ANNOTATION"] == key
    assert rendered.env()["NODE_DNS_DISCOVERED_ANNOTATION"] == key


def test_rendered_agent_environment_is_accepted_by_the_agent_settings(helm: Helm) -> None:
    config = {
        "interfaces": ["eth*", "ens*"],
        "excludeInterfaces": ["lo", "docker*"],
        "allowedNetworks": ["192.168.1.0/24", "fd00::/8"],
        "families": ["ipv4"],
        "temporaryAddresses": True,
        "maxAddresses": 4,
        "reassertInterval": 120,
        "httpAddress": "0.0.0.0",
        "httpPort": 9481,
    }
    container = agent_container(helm.template(values({"agent": {"enabled": True, "config": config}})))
    environ = {entry["name"]: entry["value"] for entry in container["env"] if "value" in entry}

    settings = agent.load({}, environ)

    assert settings.agent_interfaces == ("eth*", "ens*")
    assert settings.agent_exclude_interfaces == ("lo", "docker*")
    assert settings.agent_allowed_networks == ("192.168.1.0/24", "fd00::/8")
    assert settings.agent_families == ("ipv4",)
    assert settings.agent_temporary_addresses is True
    assert (settings.agent_max_addresses, settings.agent_reassert_interval) == (4, 120.0)
    assert (settings.agent_http_address, settings.agent_http_port) == ("0.0.0.0", 9481)
    assert settings.discovered_annotation == "node-dns/discovered-ips"
    assert settings.log_json is True


def test_notes_show_the_discovered_annotation_and_warn_when_it_is_not_served(helm: Helm) -> None:
    text = helm.notes(values(AGENT, {"service": {"clusterIP": "10.0.0.53"}}))

    assert "Node agent: the DaemonSet node-dns/dns-node-dns-agent writes" in text
    assert "DISCOVERED:.metadata.annotations.node-dns/discovered-ips" in text
    assert "WARNING: agent.enabled is set but config.ipSources (annotation) does not list" in text


def test_notes_do_not_warn_when_discovered_addresses_are_served(helm: Helm) -> None:
    served = {"config": {"ipSources": ["annotation", "discovered", "external"]}}
    text = helm.notes(values(AGENT, served, {"service": {"clusterIP": "10.0.0.53"}}))

    assert "Node agent:" in text
    assert "does not list" not in text
