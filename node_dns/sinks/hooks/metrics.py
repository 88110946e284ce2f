"""Metric families of the render hooks, read from each hook's plain counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from node_dns.sinks.hooks import runner
from node_dns.sinks.hooks.process import RenderProcess

RENDER_RESULTS = ("written", "unchanged", "guarded", "error", "write_error")
RUN_RESULTS = ("success", "failed", "timeout", "missing")


def families(hooks: Iterable[runner.Hook], process: RenderProcess | None = None) -> Iterator[Metric]:
    hooks = list(hooks)
    renders = CounterMetricFamily(
        "node_dns_hook_renders",
        "Hook renders by result: written (bytes changed), unchanged, guarded (min_nodes), "
        "error (template), write_error.",
        labels=["hook", "result"],
    )
    runs = CounterMetricFamily(
        "node_dns_hook_command_runs",
        "Hook command runs by result: success, failed, timeout (killed), missing (could not start).",
        labels=["hook", "result"],
    )
    last = GaugeMetricFamily(
        "node_dns_hook_last_success_timestamp_seconds",
        "Unix time a hook last had its file current and its command succeeded.",
        labels=["hook"],
    )
    guarded = GaugeMetricFamily(
        "node_dns_hook_guarded",
        "1 while a hook keeps its last good file because fewer than min_nodes nodes are healthy.",
        labels=["hook"],
    )
    duration = HistogramMetricFamily(
        "node_dns_hook_command_duration_seconds",
        "Run time of hook commands, seconds.",
        labels=["hook"],
    )
    for hook in hooks:
        stats = hook.stats
        for result in RENDER_RESULTS:
            renders.add_metric([hook.name, result], stats.renders.get(result, 0))
        for result in RUN_RESULTS:
            runs.add_metric([hook.name, result], stats.runs.get(result, 0))
        if stats.last_success is not None:
            last.add_metric([hook.name], stats.last_success)
        guarded.add_metric([hook.name], 1.0 if stats.guarded else 0.0)
        # The bucket counts are cumulative already: a run counts in every bucket it fits.
        buckets = [
            (repr(bound), count)
            for bound, count in zip(runner.DURATION_BUCKETS, stats.duration_buckets, strict=True)
        ]
        buckets.append(("+Inf", stats.duration_count))
        duration.add_metric([hook.name], buckets, stats.duration_sum)
    yield from (renders, runs, last, guarded, duration)
    if process is not None:
        yield CounterMetricFamily(
            "node_dns_hook_render_process_restarts",
            "Times the hook render process exited and was started again.",
            value=process.restarts,
        )
