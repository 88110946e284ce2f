"""The chart's alerting rules, checked by Prometheus' own promtool (built by tools/build.sh):
the rendered PrometheusRule must parse, and each alert must fire on the series it is about and
stay silent on healthy ones (``promtool test rules`` evaluates them over synthetic series)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.controlplane import tools_dir, versions
from tests.harness.helm import Helm
from tests.integration.test_chart import ALL_FEATURES, values

NAMESPACE, RELEASE = "node-dns", "dns"
SELECTOR = 'namespace="node-dns", job="dns-node-dns-metrics"'
# What each alert says, as rendered for the release above and the series of its test.
SUMMARY = {
    "NodeDnsHighServfailRate": "node-dns answers many queries with SERVFAIL",
    "NodeDnsWatchStale": "node-dns has seen no Node watch event for a long time",
    "NodeDnsSerialStuck": "node-dns zone serial is not moving while nodes change",
    "NodeDnsNoReadyReplicas": "node-dns has no ready replicas",
}
DESCRIPTION = {
    "NodeDnsHighServfailRate": "node-dns/p1 answers 10% of queries with SERVFAIL.",
    "NodeDnsWatchStale": "node-dns/p1 last saw a Node event 59m 0s ago; its zone may be stale.",
    "NodeDnsSerialStuck": "node-dns/p1: node counts changed in the last 15m but the zone serial did not.",
    "NodeDnsNoReadyReplicas": (
        "Deployment node-dns/dns-node-dns has no available pods: lb.example.net answers nothing."
    ),
}
SEVERITY = {"NodeDnsNoReadyReplicas": "critical"}  # the others: warning


@pytest.fixture(scope="module")
def helm() -> Any:
    with Helm() as h:
        yield h


@pytest.fixture(scope="module")
def rules_file(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rendered = helm.template(values(ALL_FEATURES), release=RELEASE, namespace=NAMESPACE)
    rule = rendered.one("PrometheusRule")
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = tools_dir() / "promtool"
    assert binary.is_file(), f"{binary} missing: run make tools"
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)


def run_tests(rules: Path, tmp_path: Path, cases: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    spec = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": cases}
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return promtool("test", "rules", str(path))


def pod_series(name: str, values_: str, pod: str = "p1", **labels: str) -> dict[str, str]:
    extra = "".join(f', {k}="{v}"' for k, v in labels.items())
    return {"series": f'{name}{{{SELECTOR}, pod="{pod}"{extra}}}', "values": values_}


def test_promtool_is_the_pinned_version() -> None:
    done = promtool("--version")

    assert done.stdout.split()[2] == versions()["PROMETHEUS_VERSION"].lstrip("v")


def test_the_rendered_rules_pass_promtool_check(rules_file: Path) -> None:
    done = promtool("check", "rules", str(rules_file))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 rules found" in done.stdout


def test_the_rules_select_the_job_of_the_service_the_service_monitor_scrapes(helm: Helm) -> None:
    rendered = helm.template(values(ALL_FEATURES), release=RELEASE, namespace=NAMESPACE)
    wanted = rendered.one("ServiceMonitor")["spec"]["selector"]["matchLabels"]
    scraped = [
        svc["metadata"]["name"]
        for svc in rendered.all("Service")
        if wanted.items() <= svc["metadata"].get("labels", {}).items()
    ]
    exprs = [rule["expr"] for rule in rendered.one("PrometheusRule")["spec"]["groups"][0]["rules"]]

    assert scraped == ["dns-node-dns-metrics"]  # Prometheus' job label: the Service's name
    assert all(SELECTOR in expr for expr in exprs if "node_dns_" in expr)


def fires(alert: str, at: str, **labels: str) -> dict[str, Any]:
    """promtool's expectation: ``alert`` firing at ``at`` exactly once, with these labels and the
    annotations it renders (pod p1 unless labels say otherwise)."""
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [
            {
                "exp_labels": {"severity": SEVERITY.get(alert, "warning"), "namespace": NAMESPACE, **labels},
                "exp_annotations": {"summary": SUMMARY[alert], "description": DESCRIPTION[alert]},
            }
        ],
    }


def silent(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def check(rules: Path, tmp_path: Path, series: list[dict[str, str]], *expectations: dict[str, Any]) -> None:
    done = run_tests(
        rules, tmp_path, [{"interval": "1m", "input_series": series, "alert_rule_test": list(expectations)}]
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_servfail_above_the_threshold_fires_and_a_healthy_rate_does_not(
    rules_file: Path, tmp_path: Path
) -> None:
    series = [
        pod_series("node_dns_dns_requests_total", "0+600x30"),
        pod_series("node_dns_dns_responses_total", "0+60x30", rcode="SERVFAIL"),  # 10%
        pod_series("node_dns_dns_requests_total", "0+600x30", pod="p2"),
        pod_series("node_dns_dns_responses_total", "0+6x30", pod="p2", rcode="SERVFAIL"),  # 1%
    ]

    check(
        rules_file,
        tmp_path,
        series,
        silent("NodeDnsHighServfailRate", "5m"),
        fires("NodeDnsHighServfailRate", "20m", pod="p1"),
    )


def test_a_silent_watch_fires_only_while_there_are_nodes(rules_file: Path, tmp_path: Path) -> None:
    series = [
        pod_series("node_dns_watch_last_event_timestamp_seconds", "0x60"),
        pod_series("node_dns_nodes", "5x60", state="healthy"),
        pod_series("node_dns_watch_last_event_timestamp_seconds", "0x60", pod="p2"),
        pod_series("node_dns_nodes", "0x60", pod="p2", state="healthy"),
    ]

    check(
        rules_file,
        tmp_path,
        series,
        silent("NodeDnsWatchStale", "5m"),
        fires("NodeDnsWatchStale", "59m", pod="p1"),
    )


def test_node_changes_without_a_serial_change_fire_serial_stuck(rules_file: Path, tmp_path: Path) -> None:
    changing = " ".join(str(n) for n in list(range(1, 21)) * 3)
    series = [
        pod_series("node_dns_nodes", changing, state="healthy"),
        pod_series("node_dns_zone_serial", "100x60"),
        pod_series("node_dns_nodes", changing, pod="p2", state="healthy"),
        pod_series("node_dns_zone_serial", "100+1x60", pod="p2"),
    ]

    check(rules_file, tmp_path, series, fires("NodeDnsSerialStuck", "50m", pod="p1"))


def test_no_available_replica_fires(rules_file: Path, tmp_path: Path) -> None:
    deployment = (
        f'kube_deployment_status_replicas_available{{namespace="{NAMESPACE}", deployment="dns-node-dns"}}'
    )

    check(
        rules_file,
        tmp_path,
        [{"series": deployment, "values": "2 2 2 0x20"}],
        silent("NodeDnsNoReadyReplicas", "2m"),
        fires("NodeDnsNoReadyReplicas", "10m", deployment="dns-node-dns"),
    )
