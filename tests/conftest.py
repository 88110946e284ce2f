"""Session fixtures shared by all test suites.

The control plane is session-scoped because starting etcd + kube-apiserver costs ~2.5 s; pytest
only builds it when a test asks for ``control_plane`` (or ``kube``), so unit runs never pay.
Tests share it, so they should use unique node names (``unique_name``) or clean up what they
create.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from types import FrameType

import pytest

from tests.harness import fastudp
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube


def pytest_configure(config: pytest.Config) -> None:
    fastudp.ensure_built()  # before any test module imports the transports


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so pytest runs fixture teardown (and kills children)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """One etcd + kube-apiserver for the whole session, with an admin client (``.kube``)."""
    with _sigterm_as_interrupt(), ControlPlane() as plane:
        yield plane


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    """The admin REST client of the session control plane."""
    return control_plane.kube


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names that never clash between tests sharing the control plane: ``unique_name("node")``."""

    def make(prefix: str = "node") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make
