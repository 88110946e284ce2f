"""kopf's settings: what node-dns asks of the watch it does not write itself."""

from __future__ import annotations

from node_dns.sources import lister, watch


def test_kopf_lists_nodes_in_pages_of_the_resync_size() -> None:
    settings = watch.operator_settings()
    assert settings.watching.chunk_size == lister.RESYNC_PAGE


def test_kopf_posts_no_events_and_peers_with_nobody() -> None:
    settings = watch.operator_settings()
    assert settings.posting.enabled is False
    assert settings.peering.standalone is True
    assert settings.scanning.disabled is True


def test_kopf_lets_an_idle_object_worker_go_within_a_second() -> None:
    settings = watch.operator_settings()
    assert settings.queueing.idle_timeout == watch.WORKER_IDLE <= 1.0
