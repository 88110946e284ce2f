"""Writing the one annotation the agent owns: a JSON merge patch of that key, only when it changes.

The agent remembers what it last wrote, so an unchanged address set costs nothing. At start and
at every re-assert it reads the node first: a restarted agent does not patch a value that is
already there, and a value someone else overwrote is put back. An empty set removes the key
(``null`` in the merge patch), so the controller's next IP source takes over.

Errors the agent cannot outlive (the node does not exist, the apiserver refuses this identity)
are :class:`Fatal`: one line and a non-zero exit, so the pod's status shows it. Everything else
is retried with :class:`Backoff`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote


class Api(Protocol):
    """The two calls the agent makes (:class:`node_dns.kube.Client` has them)."""

    async def get(self, path: str) -> dict[str, Any]: ...

    async def patch(self, path: str, body: Any) -> dict[str, Any]: ...


class Fatal(Exception):
    """The agent cannot do its job with this node name or identity; the message is one line."""


def node_path(node: str) -> str:
    return "/api/v1/nodes/" + quote(node, safe="")


def _status(error: BaseException) -> int | None:
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def _message(error: BaseException) -> str:
    body = getattr(error, "body", None)
    text = body.get("message") if isinstance(body, Mapping) else None
    return " ".join(str(text or error).split())[:400]


def fatal_from(error: BaseException, node: str, doing: str) -> Fatal | None:
    """The :class:`Fatal` an API error amounts to, or None when retrying may help."""
    status = _status(error)
    if status == 404:
        return Fatal(f"node {node!r} does not exist (check NODE_NAME): {_message(error)}")
    if status in (401, 403):
        return Fatal(f"no permission to {doing} node {node!r}: {_message(error)}")
    if status in {400, 422}:
        return Fatal(f"the apiserver refused to {doing} node {node!r}: {_message(error)}")
    return None


@dataclass
class PatchStats:
    """Patch outcomes by result (``ok``, ``error``), read by the metrics sink."""

    patches: dict[str, int] = field(default_factory=lambda: {"ok": 0, "error": 0})
    reads: dict[str, int] = field(default_factory=lambda: {"ok": 0, "error": 0})
    last_success: float = 0.0


class Publisher:
    """Keeps ``metadata.annotations[key]`` of one node equal to what the agent selected."""

    def __init__(self, api: Api, node: str, key: str) -> None:
        self._api = api
        self.node = node
        self.key = key
        self.stats = PatchStats()
        self._known = False
        self._current: str | None = None

    @property
    def current(self) -> str | None:
        """The value the annotation had when last read or written (None: absent)."""
        return self._current

    async def read(self) -> str | None:
        """The annotation's value on the node now (and remember it)."""
        try:
            node = await self._api.get(node_path(self.node))
        except Exception as error:
            self.stats.reads["error"] += 1
            fatal = fatal_from(error, self.node, "get")
            if fatal is None:
                raise
            raise fatal from error
        self.stats.reads["ok"] += 1
        annotations = (node.get("metadata") or {}).get("annotations") or {}
        value = annotations.get(self.key)
        self._current, self._known = (str(value) if value is not None else None), True
        return self._current

    async def ensure(self, value: str | None, *, verify: bool = False) -> bool:
        """Make the annotation equal ``value`` (None removes it); True when a patch was sent."""
        if verify or not self._known:
            await self.read()
        if self._current == value:
            return False
        body = {"metadata": {"annotations": {self.key: value}}}
        try:
            await self._api.patch(node_path(self.node), body)
        except Exception as error:
            self.stats.patches["error"] += 1
            self._known = False  # did it land? read again before the next attempt
            fatal = fatal_from(error, self.node, "patch")
            if fatal is None:
                raise
            raise fatal from error
        self.stats.patches["ok"] += 1
        self._current = value
        return True


class Backoff:
    """Exponential delays with full jitter: ``first`` doubling up to ``cap`` seconds."""

    def __init__(self, first: float = 0.5, cap: float = 60.0, rng: random.Random | None = None) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap, self.first * 2 ** (self.failures - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
