"""Full lists: the gate to authoritative answers, and the reconciler that undoes missed deletes.

kopf has no "synced" signal, and after a 410 it re-lists without telling handlers which nodes
vanished. So node-dns takes its own complete lists: one at start (SERVFAIL until it lands), one
every resync interval, and one as soon as the apiserver answers again after it was unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from node_dns import kube
from node_dns.sources import nodes, services

log = logging.getLogger(__name__)

RESYNC_PAGE = 10
"""Nodes per request of a resync list (and of kopf's listing). A page is received, decoded and
applied in one step of the event loop: with kubelet-shaped Nodes (~10 KB of JSON each) that step
took 0.8-1.0 ms of CPU at 10 per page, 1.8-2.1 ms at 25, 3.5-4 ms at 50 (the JSON decode alone:
32 µs per Node; 500 Nodes, 22 ms) on the test machine (bench/loop_steps.py relist)."""
FIRST_PAGE = 500
"""Nodes per request of the first list: it gates the zone (SERVFAIL until it lands), so it is
taken in few requests rather than in short steps."""


class Lister:
    def __init__(
        self,
        source: nodes.NodeSource,
        client: kube.Client,
        *,
        resync_interval: float,
        probe_interval: float = 2.0,
        service_lister: services.ServiceLister | None = None,
        node_selector: str = "",
        on_synced: Callable[[], object] | None = None,
    ) -> None:
        """``on_synced`` is called once, right after the first complete list is applied."""
        self._on_synced = on_synced
        self._services = service_lister
        self._node_params = {"labelSelector": node_selector} if node_selector else None
        self._source = source
        self._client = client
        self._resync = resync_interval
        self._probe = probe_interval
        self.synced = asyncio.Event()
        self._reconcile_requested = False
        source.on_relisted = self.request_reconcile
        if service_lister is not None:
            service_lister.source.on_relisted = self.request_reconcile

    def request_reconcile(self) -> None:
        """Ask for a full list at the next probe tick (cheap to call once per listed object)."""
        if self.synced.is_set():
            self._reconcile_requested = True

    async def list_once(self) -> None:
        started = time.monotonic()
        # Services are fetched first and applied just before the node list completes: the first
        # complete node list opens the gate, so it opens on complete data.
        listings = await self._services.fetch() if self._services is not None else None
        relisting = await self._read_nodes()
        if self._services is not None and listings is not None:
            self._services.apply(listings)
        await relisting.finish()
        self._source.stats.lists["ok"] = self._source.stats.lists.get("ok", 0) + 1
        self._source.stats.reachable = True
        if not self.synced.is_set():
            log.info(
                "node list loaded: %d nodes in %.2fs; zone is authoritative",
                relisting.count,
                time.monotonic() - started,
            )
            self.synced.set()
            if self._on_synced is not None:
                self._on_synced()
        self.synced.set()

    async def _read_nodes(self) -> nodes.Relisting:
        """The node list, each page read into facts and applied before the next is asked for (its
        JSON then dropped: one page of decoded Nodes is alive at a time, where 5,000 kubelet-shaped
        Nodes decoded at once took ~150 MB and what survived of them kept the allocator's arenas).
        A failure part-way abandons the list: what its pages said stays, nothing is deleted."""
        size = RESYNC_PAGE if self.synced.is_set() else FIRST_PAGE
        relisting: nodes.Relisting | None = None
        try:
            async for page in self._client.pages(
                "/api/v1/nodes", kind="NodeList", params=self._node_params, page_size=size
            ):
                if relisting is None:
                    relisting = self._source.relisting(page.resource_version)
                await relisting.read(page.items)
                del page
        except BaseException:
            if relisting is not None:
                relisting.abandon()
            raise
        if relisting is None:  # pragma: no cover - pages() yields a page or raises
            raise AssertionError("a list without a page")
        return relisting

    async def run(self) -> None:
        """Forever: list until one succeeds, then probe often and re-list on recovery or schedule."""
        next_list = 0.0
        unreachable_since: float | None = None
        failures = 0
        while True:
            now = time.monotonic()
            try:
                due = now >= next_list or self._reconcile_requested
                if due or unreachable_since is not None or not self.synced.is_set():
                    self._reconcile_requested = False
                    await self.list_once()
                    if unreachable_since is not None:
                        log.info(
                            "apiserver reachable again after %.1fs; zone reconciled", now - unreachable_since
                        )
                    unreachable_since = None
                    failures = 0
                    next_list = time.monotonic() + self._resync * random.uniform(0.9, 1.1)
                else:
                    await self._client.probe()
                    self._source.stats.last_contact = time.time()
                    self._source.stats.reachable = True
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure of the API is transient here: keep serving
                failures += 1
                self._source.stats.lists["error"] = self._source.stats.lists.get("error", 0) + 1
                self._source.stats.reachable = False
                if unreachable_since is None:
                    unreachable_since = now
                    log.warning(
                        "cannot read from the apiserver, serving the last known zone: %s", _brief(error)
                    )
                elif failures % 30 == 0:
                    log.warning(
                        "apiserver reads failing for %.0fs: %s",
                        now - unreachable_since,
                        _brief(error),
                    )
            await asyncio.sleep(self._probe if self.synced.is_set() else min(self._probe, 1.0))


def _brief(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:200]}"
