"""The chart's edge mode: DNS on port 53 of selected nodes, for delegation straight to them.

Rendered with the real ``helm``; the rendered objects go to the real kube-apiserver with strict
field validation. The security context is asserted object by object: non-root, read-only root,
no privilege escalation, and NET_BIND_SERVICE the only capability, only when binding below 1024.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tests.harness.controlplane import REPO_ROOT
from tests.harness.helm import Helm, HelmError, Rendered
from tests.harness.kube import Kube
from tests.integration.test_chart import apiserver_objects, merged, values

SELECTOR = {"node-dns/edge": "true"}
EDGE: dict[str, Any] = {"edge": {"enabled": True, "nodeSelector": SELECTOR}}
HOST_PORT: dict[str, Any] = merged(EDGE, {"edge": {"mode": "hostPort"}})
# Delegation to two edge nodes, one dual-stack, plus a name server outside the zone.
DELEGATION: dict[str, Any] = {
    "nameservers": [
        {"name": "ns1.lb.example.net", "ips": ["192.0.2.53"]},
        {"name": "ns2.lb.example.net.", "ips": ["198.51.100.53", "2001:db8::53"]},
        {"name": "ns3.example.org"},
    ]
}


@pytest.fixture(scope="module")
def helm() -> Iterator[Helm]:
    with Helm() as h:
        yield h


def edge_pod(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("DaemonSet")["spec"]["template"]["spec"]
    return spec


def edge_container(rendered: Rendered) -> dict[str, Any]:
    (container,) = edge_pod(rendered)["containers"]
    return container


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# --- what edge mode renders -----------------------------------------------------------------------


def test_edge_mode_is_off_by_default(helm: Helm) -> None:
    assert helm.template(values()).all("DaemonSet") == []


def test_edge_mode_adds_a_daemonset_restricted_to_the_selected_nodes(helm: Helm) -> None:
    rendered = helm.template(values(EDGE))

    assert edge_pod(rendered)["nodeSelector"] == SELECTOR
    assert len(rendered.all("Deployment")) == 1  # in-cluster serving stays


def test_edge_pods_stay_out_of_the_deployment_service_and_pdb_selectors(helm: Helm) -> None:
    rendered = helm.template(values(EDGE))
    edge_labels = rendered.one("DaemonSet")["spec"]["template"]["metadata"]["labels"]
    selectors = [
        rendered.one("Deployment")["spec"]["selector"]["matchLabels"],
        rendered.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        *[s["spec"]["selector"] for s in rendered.all("Service")],
    ]

    for selector in selectors:
        assert not selector.items() <= edge_labels.items(), selector
    assert rendered.one("DaemonSet")["spec"]["selector"]["matchLabels"].items() <= edge_labels.items()


def test_host_network_binds_53_on_the_node_address(helm: Helm) -> None:
    rendered = helm.template(values(EDGE))
    pod, container = edge_pod(rendered), edge_container(rendered)
    env = env_of(container)

    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert env["NODE_DNS_DNS_ADDRESS"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert env["NODE_DNS_DNS_PORT"] == "53"
    assert {(p["containerPort"], p["protocol"]) for p in container["ports"]} == {(53, "UDP"), (53, "TCP")}


def test_host_network_keeps_http_on_the_node_loopback_and_probes_it_there(helm: Helm) -> None:
    container = edge_container(helm.template(values(EDGE)))
    env = env_of(container)

    assert (env["NODE_DNS_HTTP_ADDRESS"], env["NODE_DNS_HTTP_PORT"]) == ("127.0.0.1", "8053")
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert (get["host"], get["port"]) == ("127.0.0.1", 8053), probe
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_host_network_can_listen_on_every_node_address(helm: Helm) -> None:
    container = edge_container(helm.template(values(EDGE, {"edge": {"hostNetwork": {"dnsAddress": "::"}}})))

    assert env_of(container)["NODE_DNS_DNS_ADDRESS"] == "::"


def test_edge_environment_sets_each_listener_once(helm: Helm) -> None:
    for features in (EDGE, HOST_PORT):
        names = [e["name"] for e in edge_container(helm.template(values(features)))["env"]]
        assert len(names) == len(set(names)), names


def test_host_port_forwards_53_to_the_unprivileged_container_port(helm: Helm) -> None:
    rendered = helm.template(values(HOST_PORT))
    pod, container = edge_pod(rendered), edge_container(rendered)
    dns_ports = [p for p in container["ports"] if p["name"].startswith("dns-")]

    assert "hostNetwork" not in pod
    assert {(p["hostPort"], p["containerPort"], p["protocol"]) for p in dns_ports} == {
        (53, 5353, "UDP"),
        (53, 5353, "TCP"),
    }
    assert env_of(container)["NODE_DNS_DNS_PORT"] == "5353"
    assert container["readinessProbe"]["httpGet"]["port"] == "http"


def test_edge_rollout_never_runs_two_pods_on_one_node(helm: Helm) -> None:
    strategy = helm.template(values(EDGE)).one("DaemonSet")["spec"]["updateStrategy"]

    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}


def test_edge_tolerations_and_affinity_apply_to_edge_pods_only(helm: Helm) -> None:
    toleration = {"key": "edge", "operator": "Exists", "effect": "NoSchedule"}
    rendered = helm.template(values(EDGE, {"edge": {"tolerations": [toleration]}}))

    assert edge_pod(rendered)["tolerations"] == [toleration]
    assert "tolerations" not in rendered.one("Deployment")["spec"]["template"]["spec"]


# --- the security context -------------------------------------------------------------------------


def assert_locked_down(pod: dict[str, Any], container: dict[str, Any]) -> None:
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "privileged" not in security


def test_host_network_below_1024_adds_net_bind_service_and_nothing_else(helm: Helm) -> None:
    rendered = helm.template(values(EDGE))
    pod, container = edge_pod(rendered), edge_container(rendered)

    assert_locked_down(pod, container)
    assert container["securityContext"]["capabilities"]["add"] == ["NET_BIND_SERVICE"]
    assert container["command"] == ["/opt/node-dns/bin/python-netbind", "/opt/node-dns/bin/node-dns"]


def test_host_network_on_a_high_port_adds_no_capability(helm: Helm) -> None:
    rendered = helm.template(values(EDGE, {"edge": {"port": 5300}}))
    pod, container = edge_pod(rendered), edge_container(rendered)

    assert_locked_down(pod, container)
    assert "add" not in container["securityContext"]["capabilities"]
    assert "command" not in container


def test_host_port_adds_no_capability(helm: Helm) -> None:
    rendered = helm.template(values(HOST_PORT))
    pod, container = edge_pod(rendered), edge_container(rendered)

    assert_locked_down(pod, container)
    assert "add" not in container["securityContext"]["capabilities"]
    assert "command" not in container


# --- contradictions are refused -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({"edge": {"enabled": True}}, r"/edge.*nodeSelector"),
        ({"edge": {"enabled": True, "nodeSelector": {}}}, r"/edge/nodeSelector.*minProperties"),
        (merged(EDGE, {"edge": {"mode": "loadBalancer"}}), r"/edge/mode.*'hostNetwork', 'hostPort'"),
        (
            merged(HOST_PORT, {"config": {"dnsAddress": "127.0.0.1"}}),
            r"/config/dnsAddress.*'0\.0\.0\.0', '::'",
        ),
        (merged(EDGE, {"edge": {"port": 0}}), r"/edge/port"),
        (
            merged(EDGE, {"edge": {"hostNetwork": {"httpPort": 53}}}),
            r"edge\.hostNetwork\.httpPort \(53\) must differ",
        ),
    ],
    ids=["no-selector", "empty-selector", "unknown-mode", "host-port-on-one-address", "port-0", "http-on-53"],
)
def test_contradictory_edge_values_are_refused_naming_the_value(
    helm: Helm, features: dict[str, Any], message: str
) -> None:
    with pytest.raises(HelmError) as refused:
        helm.template(values(features))

    assert re.search(message, refused.value.stderr), refused.value.stderr


def test_the_template_names_the_missing_selector_even_without_the_schema(helm: Helm) -> None:
    with pytest.raises(HelmError) as refused:
        helm.template(values({"edge": {"enabled": True}}), extra_args=["--skip-schema-validation"])

    assert "edge.nodeSelector is required when edge.enabled is true" in refused.value.stderr


def test_lint_strict_passes_in_both_edge_modes(helm: Helm) -> None:
    helm.lint(values(EDGE))
    helm.lint(values(HOST_PORT))


# --- NOTES: the delegation to paste ---------------------------------------------------------------


def test_notes_print_the_ns_and_glue_records_for_the_parent_zone(helm: Helm) -> None:
    text = helm.notes(values(EDGE, DELEGATION))
    edge_part = text[text.index("EDGE MODE") :]

    assert "put these records in the parent zone example.net:" in edge_part
    records = [line.split() for line in edge_part.splitlines() if re.match(r"^\S+\.\s+\d+\s+IN\s", line)]
    assert records == [
        ["lb.example.net.", "3600", "IN", "NS", "ns1.lb.example.net."],
        ["lb.example.net.", "3600", "IN", "NS", "ns2.lb.example.net."],
        ["lb.example.net.", "3600", "IN", "NS", "ns3.example.org."],
        ["ns1.lb.example.net.", "3600", "IN", "A", "192.0.2.53"],
        ["ns2.lb.example.net.", "3600", "IN", "A", "198.51.100.53"],
        ["ns2.lb.example.net.", "3600", "IN", "AAAA", "2001:db8::53"],
    ]


def test_notes_name_the_nodes_the_firewall_and_the_check(helm: Helm) -> None:
    text = helm.notes(values(EDGE, DELEGATION))

    assert "port 53 of every node labelled node-dns/edge=true" in text
    assert "Firewall: open UDP and TCP 53 from anywhere to those nodes" in text
    assert "dig @192.0.2.53 lb.example.net SOA +norecurse" in text
    assert "ns3.example.org is outside lb.example.net" in text


def test_notes_say_how_to_answer_ipv6_glue_in_host_network_mode(helm: Helm) -> None:
    assert 'set edge.hostNetwork.dnsAddress to "::"' in helm.notes(values(EDGE, DELEGATION))
    assert "dnsAddress" not in helm.notes(
        values(EDGE, DELEGATION, {"edge": {"hostNetwork": {"dnsAddress": "::"}}})
    )


def test_notes_take_the_ns_ttl_from_the_values(helm: Helm) -> None:
    text = helm.notes(values(EDGE, {"config": {"nsTtl": 86400}}))

    assert "lb.example.net.  86400  IN  NS  ns1.lb.example.net." in text


def test_notes_print_no_edge_section_when_edge_mode_is_off(helm: Helm) -> None:
    assert "EDGE MODE" not in helm.notes(values())


# --- the README's edge topology -----------------------------------------------------------------

README = (REPO_ROOT / "README.md").read_text()


def readme_block(name: str) -> str:
    """The fenced block between ``<!-- name:start -->`` and ``<!-- name:end -->`` in the README."""
    found = re.search(rf"<!-- {name}:start -->\n```\w*\n(.*?)```\n<!-- {name}:end -->", README, re.S)
    assert found, f"README has no {name} block"
    return found.group(1)


def readme_edge_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(readme_block("edge-values"))
    return loaded


def test_readme_edge_values_print_the_records_the_readme_shows(helm: Helm) -> None:
    notes = helm.notes(readme_edge_values())
    printed = [" ".join(line.split()) for line in notes[notes.index("EDGE MODE") :].splitlines()]
    shown = [" ".join(line.split()) for line in readme_block("edge-records").splitlines()]

    assert [line for line in printed if line in shown] == shown


def test_readme_edge_values_run_on_port_53_with_only_net_bind_service(helm: Helm) -> None:
    rendered = helm.template(readme_edge_values())
    pod, container = edge_pod(rendered), edge_container(rendered)

    assert pod["hostNetwork"] is True
    assert env_of(container)["NODE_DNS_DNS_PORT"] == "53"
    assert_locked_down(pod, container)
    assert container["securityContext"]["capabilities"]["add"] == ["NET_BIND_SERVICE"]


@pytest.mark.controlplane
def test_readme_edge_values_pass_the_apiservers_strict_validation(
    helm: Helm, kube: Kube, unique_name: Callable[[str], str]
) -> None:
    namespace = unique_name("readme-edge")
    rendered = helm.template(readme_edge_values(), release=namespace, namespace=namespace)

    created = kube.apply_manifests(apiserver_objects(rendered, namespace))

    assert "DaemonSet" in {obj["kind"] for obj in created}


# --- against the real apiserver -------------------------------------------------------------------


@pytest.mark.controlplane
@pytest.mark.parametrize(
    "features",
    [
        EDGE,
        HOST_PORT,
        merged(EDGE, {"edge": {"port": 5300}}),
        merged(EDGE, {"leaderElection": {"enabled": True}}),
    ],
    ids=["host-network", "host-port", "host-network-high-port", "host-network-leader-election"],
)
def test_edge_manifests_pass_the_apiservers_strict_validation(
    helm: Helm, kube: Kube, unique_name: Callable[[str], str], features: dict[str, Any]
) -> None:
    namespace = unique_name("edge")
    rendered = helm.template(values(features), release=namespace, namespace=namespace)

    created = kube.apply_manifests(apiserver_objects(rendered, namespace))

    (daemonset,) = [obj for obj in created if obj["kind"] == "DaemonSet"]
    stored = daemonset["spec"]["template"]["spec"]
    assert stored["nodeSelector"] == SELECTOR
    assert_locked_down(stored, stored["containers"][0])
    port = features["edge"].get("port", 53)
    expected_add = (
        ["NET_BIND_SERVICE"]
        if features["edge"].get("mode", "hostNetwork") == "hostNetwork" and port < 1024
        else None
    )
    assert stored["containers"][0]["securityContext"]["capabilities"].get("add") == expected_add
