"""An event or list entry equal to what the store holds keeps the object already held.

Nodes are re-sent unchanged (kopf's replay after start, every re-list, status-only updates);
keeping the held object means the new copy dies young instead of joining the long-lived heap
that full garbage collections walk.
"""

from __future__ import annotations

from node_dns import model
from node_dns.zone.store import Store, version


def facts(ready: bool = True) -> model.NodeFacts:
    return model.NodeFacts(name="a", areas=frozenset({"home"}), ready=ready)


def _everything(_: str) -> bool:
    return True


def test_an_equal_event_keeps_the_held_object_and_moves_the_version() -> None:
    store: Store[str, model.NodeFacts] = Store()
    held = facts()
    store.apply("a", held, version("1"))
    applied, old = store.apply("a", facts(), version("2"))
    assert applied and old is held
    assert store.items["a"] is held
    assert store.versions["a"] == 2


def test_a_changed_event_replaces_the_held_object() -> None:
    store: Store[str, model.NodeFacts] = Store()
    store.apply("a", facts(), version("1"))
    changed = facts(ready=False)
    store.apply("a", changed, version("2"))
    assert store.items["a"] is changed


def test_an_equal_list_entry_keeps_the_held_object_and_reports_no_change() -> None:
    store: Store[str, model.NodeFacts] = Store()
    held = facts()
    store.apply("a", held, version("1"))
    assert store.replace([("a", facts(), version("3"))], version("3"), _everything) == []
    assert store.items["a"] is held
    assert store.versions["a"] == 3


def test_a_changed_list_entry_replaces_the_held_object() -> None:
    store: Store[str, model.NodeFacts] = Store()
    old = facts()
    store.apply("a", old, version("1"))
    changed = facts(ready=False)
    assert store.replace([("a", changed, version("3"))], version("3"), _everything) == [("a", old, changed)]
    assert store.items["a"] is changed
