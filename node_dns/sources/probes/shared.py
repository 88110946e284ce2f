"""Replicas agree: the leader probes and publishes its verdicts; every replica answers from them.

Why this design rather than "every replica probes and answers the intersection": each replica
probing on its own would see different moments and different network paths, so answers (and
SOA serials) would differ between replicas for as long as a flip takes to be seen by all, and an
intersection lets one replica with a bad path remove nodes for everybody. With one prober the
answers are identical, the probe load on nodes does not grow with replicas, and the price is a
small write per batch of flips, one watch per replica, and a dependency on the apiserver for
*changes* of verdicts (answers continue from the last table while it is away).

- :class:`Publisher` (a leader-only task) runs the prober and writes its table to one ConfigMap
  in the Lease namespace whenever it changes (flips batched over ``min_gap`` seconds, an unchanged
  table never rewritten). A new leader starts from the published table, so it flips nothing that
  did not change; its first round completes immediately for targets already judged.
- :class:`Reader` (every replica, the leader included) reads and watches that ConfigMap and
  applies each table with the object's resourceVersion, so equal tables give equal SOA serials.
  A replica that cannot read the table (forbidden, deleted, or no contact for ``max_age``
  seconds) falls back to Ready-only: it logs once, sets ``node_dns_probe_verdicts_available`` to
  0 and says why in /readyz and /debug/zone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from node_dns import kube
from node_dns.kube import errors
from node_dns.sources.probes import verdicts
from node_dns.sources.probes.source import ProbeSource

log = logging.getLogger(__name__)

RETRY = 2.0
LABELS = {"app.kubernetes.io/name": "node-dns", "app.kubernetes.io/component": "probe-verdicts"}


def path_of(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    return f"{base}/{name}" if name else base


class Publisher:
    """The leader task: probe, and keep the ConfigMap equal to the prober's table."""

    def __init__(
        self,
        client: kube.Client,
        namespace: str,
        name: str,
        source: ProbeSource,
        *,
        min_gap: float = 0.05,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._name = name
        self._source = source
        self._min_gap = min_gap
        self._written: dict[str, Any] | None = None
        self._version: str | None = None
        self.writes = 0
        self.errors = 0

    async def run(self, stop: asyncio.Event) -> None:
        source, prober = self._source, self._source.prober
        prober.reset()
        table = source.table
        if table is not None:
            prober.seed(table.verdicts.items(), table.complete)
        source.probing = True
        log.info(
            "leading: probing %d targets and publishing verdicts to configmap %s/%s",
            len(prober.targets),
            self._namespace,
            self._name,
        )
        runner = asyncio.create_task(prober.run(), name="node-dns:prober")
        try:
            await self._publish_loop(stop)
        finally:
            source.probing = False
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    async def _publish_loop(self, stop: asyncio.Event) -> None:
        prober = self._source.prober
        prober.changed.set()  # publish once at the start of a term
        failing = False
        while not stop.is_set():
            await prober.changed.wait()
            prober.changed.clear()
            body = verdicts.encode(self._source.local_table())
            if body == self._written:
                continue
            try:
                await self._write(body)
            except (errors.ApiError, errors.Unreachable) as error:
                self.errors += 1
                if not failing:
                    log.warning("could not publish probe verdicts (retrying every %.0fs): %s", RETRY, error)
                failing = True
                prober.changed.set()
                await asyncio.sleep(RETRY)
                continue
            if failing:
                log.info("probe verdicts published again")
            failing = False
            await asyncio.sleep(self._min_gap)  # flips arriving meanwhile go out in one write

    async def _write(self, body: dict[str, Any]) -> None:
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self._name, "namespace": self._namespace, "labels": LABELS},
            **body,
        }
        for _ in range(3):
            if self._version is None:
                try:
                    current = await self._client.get(path_of(self._namespace, self._name), request_timeout=5)
                    self._version = current["metadata"]["resourceVersion"]
                except errors.NotFound:
                    created = await self._client.post(path_of(self._namespace), obj, request_timeout=5)
                    self._done(body, created)
                    return
            obj["metadata"]["resourceVersion"] = self._version
            try:
                written = await self._client.put(path_of(self._namespace, self._name), obj, request_timeout=5)
            except (errors.Conflict, errors.NotFound):
                self._version = None  # changed or deleted behind our back: read it again
                continue
            self._done(body, written)
            return
        raise errors.ApiError(409, {}, f"configmap {self._namespace}/{self._name} keeps changing")

    def _done(self, body: dict[str, Any], obj: dict[str, Any]) -> None:
        self._written = body
        self._version = obj.get("metadata", {}).get("resourceVersion")
        self.writes += 1


class Reader:
    """Every replica: follow the published table and apply it (or fall back, visibly)."""

    def __init__(
        self,
        client: kube.Client,
        namespace: str,
        name: str,
        source: ProbeSource,
        *,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        watch_seconds: int = 60,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._name = name
        self._source = source
        self._max_age = max_age
        self._clock = clock
        self._watch_seconds = watch_seconds
        self._contact: float | None = None
        self._started = clock()
        self._version: str | None = None

    async def run(self) -> None:
        while True:
            try:
                await self._follow()
            except errors.Gone:
                self._version = None
                continue
            except errors.ApiError as error:
                if error.status in (401, 403):
                    self._fall_back(f"not allowed to read configmap {self._namespace}/{self._name}: {error}")
                else:
                    self._unreadable(error)
            except errors.Unreachable as error:
                self._unreadable(error)
            await asyncio.sleep(RETRY)

    def _unreadable(self, error: Exception) -> None:
        since = self._contact if self._contact is not None else self._started
        if self._clock() - since >= self._max_age:
            self._fall_back(f"could not read the verdicts for {self._max_age:g}s: {error}")
        else:
            log.debug("reading probe verdicts failed (keeping the last ones): %s", error)

    def _fall_back(self, reason: str) -> None:
        if self._source.table is not None or self._source.fallback != reason:
            self._source.apply(None, None, reason)

    async def _follow(self) -> None:
        path = path_of(self._namespace, self._name)
        try:
            obj = await self._client.get(path, request_timeout=5)
        except errors.NotFound:
            self._contact = self._clock()
            self._version = None
            self._fall_back("no verdicts published yet (no leader has probed)")
            obj = None
        if obj is not None:
            self._contact = self._clock()
            self._take(obj)
        params = {"fieldSelector": f"metadata.name={self._name}"}
        async for event in self._client.watch(
            path_of(self._namespace),
            resource_version=self._version,
            params=params,
            timeout_seconds=self._watch_seconds,
        ):
            self._contact = self._clock()
            if event.type in ("ADDED", "MODIFIED"):
                self._take(event.object)
            elif event.type == "DELETED":
                self._version = event.resource_version
                self._fall_back("the verdicts configmap was deleted")
            elif event.type == "BOOKMARK":
                self._version = event.resource_version or self._version

    def _take(self, obj: dict[str, Any]) -> None:
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version is not None and version == self._version and self._source.table is not None:
            return
        self._version = version
        try:
            table = verdicts.decode(obj)
        except verdicts.DecodeError as error:
            self._fall_back(f"unreadable verdicts in configmap {self._namespace}/{self._name}: {error}")
            return
        self._source.apply(table, version)
