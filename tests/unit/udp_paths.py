"""The two UDP answer paths (compiled batch, pure-Python batch), for tests that must hold for both."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from node_dns.answer import responder as responder_mod
from node_dns.transports import accel

COMPILED = accel.choose({})
"""The compiled batch as it loads here (module None and the reason when not built or stale)."""
PATHS = [
    "python",
    pytest.param("c", marks=pytest.mark.skipif(COMPILED.module is None, reason=COMPILED.reason)),
]
"""Parametrise over these: ``@pytest.mark.parametrize("path", PATHS)``."""


def udp_respond(responder: responder_mod.Responder, path: str) -> Callable[[bytes], bytes | None]:
    """How ``path`` answers one UDP datagram: "python" is ``Responder.respond``; "c" is the compiled
    batch's splice (``_fastudp.answer``: the code its ``Batch`` runs per datagram), then
    ``Responder.respond`` for what it hands back, as ``BatchedUdp._miss`` does."""
    if path == "python":
        return responder.respond_udp
    fast = COMPILED.module
    assert fast is not None

    def respond(data: bytes) -> bytes | None:
        hit: bytes | None = fast.answer(responder._udp, data, False)
        return hit if hit is not None else responder.respond(data)

    return respond


def use_batch(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """Make the next ``BatchedUdp`` pick the batch of ``path``."""
    if path == "python":
        monkeypatch.setenv(accel.OFF, "1")
    else:
        monkeypatch.delenv(accel.OFF, raising=False)
