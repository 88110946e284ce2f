"""The verdict table every replica answers from, and its wire form in a ConfigMap.

Replicas agree because they answer from the same table: with leader election the leader probes
and writes the table to one ConfigMap in the release namespace; every replica -- the leader too
-- applies the table as read back from the apiserver, with that object's resourceVersion, so
equal content comes with an equal SOA serial everywhere. Without leader election there is one
prober per replica and the table is local.

The encoding is deterministic (sorted JSON, gzip without a timestamp), so an unchanged table is
recognised by its bytes and never rewritten. ``data.unreachable`` repeats the failing targets
as text for ``kubectl get configmap -o yaml``; the gzip'd ``binaryData`` is what replicas read
(5,000 nodes fit in a few tens of kB, far below the 1 MiB object limit).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from node_dns import model
from node_dns.settings import probe_spec as spec_mod

Key = tuple[str, str, str]
FORMAT = 1
DATA_KEY = "verdicts.json.gz"
TEXT_KEY = "unreachable"


class DecodeError(ValueError):
    """The object does not hold a verdict table this version understands."""


@dataclass(frozen=True)
class Table:
    """Verdicts by (node, address, probe key).

    ``complete``: probe keys whose first round has completed. A target of such a probe without a
    verdict is a node that appeared later and has not been probed yet: it is not served until its
    first verdict. Before the first round completes, unprobed targets are served: excluding every
    node for the first interval after each start (or each new leader) would empty the zone for
    nothing, while a node that joins later loses nothing by waiting for one probe.
    """

    verdicts: Mapping[Key, bool] = field(default_factory=dict)
    complete: frozenset[str] = frozenset()
    fault: bool = False
    leader: str = ""

    def verdict(self, node: str, ip: str, probe: str) -> bool | None:
        return self.verdicts.get((node, ip, probe))

    def usable(self, node: str, ip: str, probe: str) -> bool:
        found = self.verdicts.get((node, ip, probe))
        if found is None:
            return probe not in self.complete
        return found

    def unreachable(self) -> list[Key]:
        return sorted(k for k, v in self.verdicts.items() if not v)


def encode(table: Table) -> dict[str, Any]:
    """``data`` and ``binaryData`` of the ConfigMap for ``table``; equal tables give equal bytes."""
    probes = sorted({key[2] for key in table.verdicts} | set(table.complete))
    index = {probe: number for number, probe in enumerate(probes)}
    nodes: dict[str, list[list[Any]]] = {}
    for (node, ip, probe), verdict in sorted(table.verdicts.items()):
        nodes.setdefault(node, []).append([ip, index[probe], 1 if verdict else 0])
    document = {
        "format": FORMAT,
        "leader": table.leader,
        "fault": table.fault,
        "probes": probes,
        "complete": sorted(index[p] for p in table.complete),
        "nodes": nodes,
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    packed = gzip.compress(raw, compresslevel=6, mtime=0)
    text = "".join(f"{node} {ip} {probe}\n" for node, ip, probe in table.unreachable())
    return {
        "data": {TEXT_KEY: text, "self-fault": "true" if table.fault else "false", "leader": table.leader},
        "binaryData": {DATA_KEY: base64.b64encode(packed).decode("ascii")},
    }


def decode(obj: Mapping[str, Any]) -> Table:
    """The table in a ConfigMap body (as the apiserver returns it)."""
    binary = obj.get("binaryData") or {}
    packed = binary.get(DATA_KEY)
    if not isinstance(packed, str):
        raise DecodeError(f"no binaryData.{DATA_KEY}")
    try:
        document = json.loads(gzip.decompress(base64.b64decode(packed)))
    except (ValueError, OSError, EOFError) as error:
        raise DecodeError(f"binaryData.{DATA_KEY} is not gzip'd JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise DecodeError(
            f"unknown verdict format {document.get('format') if isinstance(document, dict) else '?'}"
        )
    try:
        probes = [str(p) for p in document["probes"]]
        verdicts: dict[Key, bool] = {}
        for node, entries in document["nodes"].items():
            for ip, number, verdict in entries:
                verdicts[(str(node), str(ip), probes[number])] = bool(verdict)
        complete = frozenset(probes[n] for n in document["complete"])
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise DecodeError(f"malformed verdict table: {error!r}") from None
    return Table(verdicts, complete, bool(document.get("fault")), str(document.get("leader") or ""))


@dataclass(frozen=True)
class Reachability:
    """The zone policy's view: may this address of this node be served in this area?

    ``plan`` says which probe an area uses (none: every address may be served), ``table`` says
    what that probe found. ``table=None`` is the Ready-only fallback: nothing is removed.
    """

    plan: spec_mod.Plan
    table: Table | None

    def usable(self, node: str, ip: model.IPAddress, area: str) -> bool:
        if self.table is None:
            return True
        probe = self.plan.for_area(area)
        if probe is None:
            return True
        return self.table.usable(node, str(ip), probe.key)

    def why(self, node: str, ip: model.IPAddress, area: str) -> str:
        """A few words for /debug/zone."""
        probe = self.plan.for_area(area)
        if probe is None:
            return "not probed"
        if self.table is None:
            return f"{probe.short}: verdicts unavailable (Ready-only)"
        verdict = self.table.verdict(node, str(ip), probe.key)
        if verdict is None:
            if probe.key in self.table.complete:
                return f"{probe.short}: not probed yet (new)"
            return f"{probe.short}: first round running"
        return f"{probe.short}: {'reachable' if verdict else 'unreachable'}"


def table_of(verdicts: Mapping[Key, bool], complete: Iterable[str], fault: bool, leader: str) -> Table:
    return Table(dict(verdicts), frozenset(complete), fault, leader)
