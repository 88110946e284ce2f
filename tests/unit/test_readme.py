"""The README is part of the product: its settings table and resolver configs must match the code."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric

from node_dns import stalls
from node_dns.answer import responder
from node_dns.settings import catalog
from tests.integration import test_resolvers

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_settings_table_matches_the_settings_model() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "settings_table.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def _fixed_lines(template: str) -> list[str]:
    """Lines of a test's config template that hold no per-run placeholder."""
    return [
        line.strip() for line in template.splitlines() if line.strip() and "{" not in line.replace("{{", "")
    ]


def test_readme_shows_the_parent_zone_the_tests_serve() -> None:
    for line in test_resolvers.PARENT_ZONE.splitlines():
        assert line in README


def test_readme_shows_the_corefile_the_tests_run() -> None:
    for line in _fixed_lines(test_resolvers.COREFILE):
        assert line.replace("{{", "{").replace("}}", "}") in README


def test_readme_shows_the_unbound_zones_the_tests_run() -> None:
    stanza = test_resolvers.UNBOUND_CONF[test_resolvers.UNBOUND_CONF.index("auth-zone:") :]
    for line in _fixed_lines(stanza):
        assert line in README


def test_readme_shows_the_secondary_configs_the_tests_run() -> None:
    from tests.harness import secondaries

    for template in (secondaries.NSD_ZONE, secondaries.KNOT_ZONE, secondaries.BIND_ZONE):
        for line in _fixed_lines(template):
            assert line.replace("{{", "{").replace("}}", "}") in README, line


# --- defaults stated in prose -------------------------------------------------------------------

PROSE = README.split("<!-- settings-table:start -->")[0] + README.split("<!-- settings-table:end -->")[1]
"""The README without its generated settings table."""

DEFAULT_CLAIMS = [
    r"`(--[a-z0-9-]+)(?:=[^`]*)?`(?:-th|\s+seconds)?\s+\(default\s+`?([^`):,\s]+)",  # `--x` (default 5
    r"`(--[a-z0-9-]+)`,\s+default\s+`([^`]+)`",  # `--x`, default `node-dns`
    r"`(--[a-z0-9-]+)`\s+\(([0-9][0-9.]*)",  # `--x` (1232) / (10 s)
    r"`(--[a-z0-9-]+)`\s+([0-9][0-9.]*)[,)]",  # `--x` 24,
]
"""The ways README prose states a setting's default."""


def _default_claims() -> list[tuple[str, str]]:
    return [(flag, value) for pattern in DEFAULT_CLAIMS for flag, value in re.findall(pattern, PROSE)]


def test_defaults_stated_in_prose_are_the_settings_defaults() -> None:
    agent = [entry for _, entries in catalog.agent_by_group() for entry in entries]
    defaults = {entry.flag: entry.default for entry in catalog.entries() + agent}
    wrong = []
    for flag, claimed in _default_claims():
        assert flag in defaults, f"README names {flag}, which is no setting"
        actual = defaults[flag]
        ok = actual in ("0", "false", "unset") if claimed == "off" else claimed == actual
        if not ok:
            wrong.append(f"{flag}: README says {claimed}, default is {actual}")
    assert wrong == []


def test_the_default_claims_are_found() -> None:
    """The patterns above still see the README's claims (a reworded README must keep them testable)."""
    found = {flag for flag, _ in _default_claims()}

    assert {
        "--tcp-max-queries",
        "--tcp-max-connections",
        "--tcp-idle-timeout",
        "--edns-udp-size",
        "--fail-open-min-healthy",
        "--fail-open-min-fraction",
        "--rrl-window",
        "--rrl-slip",
        "--rrl-ipv4-prefix",
        "--ip-sources",
        "--max-answers",
        "--http-port",
        "--leader-lease-duration",
        "--service-annotation",
        "--udp-receive-buffer",
        "--probe-interval",
        "--probe-timeout",
        "--probe-fall",
        "--probe-rise",
        "--probe-concurrency",
        "--probe-self-fault-share",
        "--probe-verdicts-max-age",
    } <= found


def test_the_fail_open_rule_is_described_the_same_for_areas_and_services() -> None:
    assert "applies to areas only" not in README
    assert "Services fail open like areas" in README
    assert "Services follow the same rule" in README


# --- metrics ------------------------------------------------------------------------------------


def _exposed() -> dict[str, tuple[set[str], str]]:
    """Every node_dns family /metrics can expose (RRL and leader election on): labels and help."""
    from node_dns import gcpolicy, loop_lag, stalls
    from node_dns.answer import stats
    from node_dns.sinks import metrics
    from node_dns.sources import nodes
    from tests.unit import zonekit

    zone = zonekit.new_zone(zonekit.settings())
    collector = metrics.NodeDnsCollector(
        metrics.Inputs(
            queries=stats.QueryStats(),
            source=nodes.SourceStats(),
            zone=zone,
            serial=lambda: zone.snapshot.serial,
            areas=lambda: zone.area_counts,
            tcp_connections=lambda: 0,
            tcp_refused=lambda: 0,
            internal_errors=lambda: 0,
            rate_limited=dict,
            extra=lambda: itertools.chain(
                metrics.leader_families(False, 0, {}),
                _hook_families(),
                _probe_families(zone),
                _worker_families(),
            ),
            loop_lag=loop_lag.LagMonitor(metrics.LAG_BUCKETS),
            udp_kernel_drops=lambda: 0,
            udp_receive_buffer=lambda: 4194304,
            udp_path="c",
            gc_pauses=gcpolicy.Pauses(metrics.LAG_BUCKETS).histograms,
            stalls=stalls.StallWatch(metrics.LAG_BUCKETS),
        )
    )
    exposed = {}
    for family in collector.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        exposed[name] = (set(getattr(family, "_labelnames", ())), family.documentation)
    return exposed


def _hook_families() -> Iterator[Metric]:
    from node_dns.sinks.hooks import Hooks, spec

    class Nothing:
        def ready(self) -> bool:
            return False

        def updates(self, timestamp: float, full: bool) -> Iterator[Any]:
            return iter(())

    hook = spec.HookSpec(name="h", template="x", output=str(Path(tempfile.gettempdir()) / "h"))
    return Hooks((hook,), Nothing()).metrics()


def _probe_families(zone: Any) -> Iterator[Metric]:
    from node_dns.settings import probe_spec
    from node_dns.sinks import probes
    from node_dns.sources.probes import prober, source

    plan = probe_spec.Plan(probe_spec.parse("tcp:443"), {})
    view = source.ProbeSource(zone, plan, prober.Prober())
    view.prober.stats.areas["home"] = prober.AreaStats()
    view.table = None
    return probes.families(view, prober.LATENCY_BUCKETS)


def _worker_families() -> Iterator[Metric]:
    from node_dns.answer.stats import Histogram
    from node_dns.sinks import metrics, workers
    from node_dns.transports.workers.pool import Link

    class Pool:
        count = 1
        lag_longest = 0.0

    return workers.families(Pool(), [Link(0)], [True], Histogram(metrics.LAG_BUCKETS))


def _documented() -> dict[str, set[str]]:
    """Metric names and label sets in the README's metrics table (first column, names in full)."""
    documented: dict[str, set[str]] = {}
    for row in re.findall(r"^\| (`node_dns_.*?) \|", README, re.MULTILINE):
        for name, labels in re.findall(r"`([a-z_]+)(?:\{([a-z_,]*)\})?`", row):
            documented[name] = set(labels.split(",")) if labels else set()
    return documented


def test_every_metric_in_the_readme_is_exposed_with_those_labels() -> None:
    exposed = _exposed()
    for name, labels in _documented().items():
        assert name in exposed, f"README lists {name}, which /metrics does not expose"
        assert exposed[name][0] == labels, f"{name}: README labels {labels}, code {exposed[name][0]}"


def test_every_exposed_metric_is_in_the_readme() -> None:
    assert set(_exposed()) - set(_documented()) == set()


def test_responses_help_says_rate_limited_responses_are_counted() -> None:
    _, help_text = _exposed()["node_dns_dns_responses_total"]

    assert "sent" not in help_text
    assert "rate limiting" in help_text
    assert "rate limiting" in README.split("`node_dns_dns_responses_total{proto,rcode}` |")[1].splitlines()[0]


def test_the_limits_the_readme_states_in_prose_are_the_codes() -> None:
    prose = " ".join(README.split())
    assert f"or when more than {responder.RESTAMP_LIMIT} are cached" in prose
    assert f"then the last {stalls.RECENT} stalls with the CLOCK_MONOTONIC time" in prose
