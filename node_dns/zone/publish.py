"""Hands each published snapshot to its subscribers, with the one it replaces.

Subscribers get ``(old, new)``: the answer path swaps to ``new``; zone transfers and render
hooks take :func:`node_dns.zone.diff.diff` of the two. They are called in the order they
subscribed, synchronously, from the one writer: a subscriber must be quick and must not raise.
"""

from __future__ import annotations

from collections.abc import Callable

from node_dns.zone.snapshot import Snapshot

Subscriber = Callable[[Snapshot, Snapshot], None]


class Publisher:
    def __init__(self, first: Snapshot) -> None:
        self.current = first
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(old, new)`` on every publication from now on (not for the current one)."""
        self._subscribers.append(callback)

    def publish(self, new: Snapshot) -> None:
        old, self.current = self.current, new
        for callback in self._subscribers:
            callback(old, new)
