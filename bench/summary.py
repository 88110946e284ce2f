"""One table of every performance target with the Go peer beside it, from the parts that ran."""

from __future__ import annotations

from collections.abc import Sequence

from bench.report import Table, verdict


def table(tables: Sequence[Table]) -> Table:
    overview = Table("Summary against the targets", ["measure", "node-dns", "target", "result", "Go peer"])
    for part in tables:
        for measure, value, target, ok, peer in part.raw.get("summary", ()):
            overview.rows.append([measure, value, target, verdict(ok), peer])
    return overview
