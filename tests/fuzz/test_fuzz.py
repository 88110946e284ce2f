"""The CI slice of the fuzzer: a few thousand inputs, in-process and through live listeners.

``make fuzz`` runs the same engine over a million inputs (see ``tests/fuzz/run.py``); here
hypothesis adds inputs it shrinks to a minimal example when a rule breaks.
"""

from __future__ import annotations

import functools
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import engine

FUZZ_SETTINGS = settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@functools.cache
def _checker() -> engine.Checker:
    return engine.Checker(*engine.zones())


def _check(data: bytes, index: int = 0) -> None:
    try:
        _checker().check(data, index)
    except engine.Finding as finding:
        raise AssertionError(f"{finding}\ninput: {data.hex()}") from None


def test_mutation_slice_in_process_and_live() -> None:
    report = engine.run(seed=20261123, count=4000, live_every=5, batch=32)
    assert report.findings == [], report.findings[:3]
    assert report.inputs == 4000
    assert report.live_udp >= 790 and report.live_tcp >= 390, report.summary()
    assert report.internal_errors == 0
    assert report.log_records == 0, "the query path logged while fuzzed"
    # the mix reaches every outcome, not just FORMERR
    assert {"NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "NOTIMP", "SERVFAIL", "BADVERS"} <= set(
        report.rcodes
    )


def test_seeds_are_all_answered_or_dropped_cleanly() -> None:
    for index, seed in enumerate(engine.seeds()):
        _check(seed, index)


@FUZZ_SETTINGS
@given(st.binary(max_size=700), st.integers(0, 7))
def test_random_bytes(data: bytes, which: int) -> None:
    _check(data, which)


_LABEL = st.one_of(
    st.sampled_from([b"lb", b"example", b"net", b"web", b"WEB", b"big", b"ns1", b"v6", b"org"]),
    st.binary(min_size=1, max_size=63),
)


@st.composite
def queries(draw: st.DrawFn) -> bytes:
    """Well-framed headers and questions with arbitrary field values, an OPT sometimes, junk after."""
    labels = draw(st.lists(_LABEL, max_size=6))
    if draw(st.booleans()):
        labels += [b"lb", b"example", b"net"]
    name = b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
    header = struct.pack(
        "!HHHHHH",
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 0xFFFF)),
        draw(st.sampled_from([1, 1, 1, 0, 2])),
        draw(st.sampled_from([0, 0, 0, 1])),
        draw(st.sampled_from([0, 0, 0, 1])),
        draw(st.sampled_from([0, 1, 1, 2])),
    )
    question = name + struct.pack(
        "!HH",
        draw(st.one_of(st.sampled_from([1, 2, 6, 28, 41, 250, 251, 252, 255]), st.integers(0, 0xFFFF))),
        draw(st.one_of(st.sampled_from([1, 3, 254, 255]), st.integers(0, 0xFFFF))),
    )
    opt = b""
    if draw(st.booleans()):
        options = draw(st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=3))
        rdata = b"".join(struct.pack("!HH", code, len(value)) + value for code, value in options)
        if draw(st.booleans()):
            rdata = rdata[: draw(st.integers(0, len(rdata)))]  # a cut option
        opt = b"\x00" + struct.pack(
            "!HHIH", 41, draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFFFFFF)), len(rdata)
        )
        opt += rdata
    tail = draw(st.binary(max_size=20)) if draw(st.integers(0, 4)) == 0 else b""
    return header + question + opt + tail


@FUZZ_SETTINGS
@given(queries(), st.integers(0, 7))
def test_structured_queries(data: bytes, which: int) -> None:
    _check(data, which)


@pytest.mark.parametrize("size", [12, 511, 512, 513, 1232, 4096, 65535])
def test_large_and_boundary_sizes(size: int) -> None:
    base = engine.canary(1)
    data = (base + bytes(size))[:size]
    _check(data)
    _check(base[:12] + b"\xc0\x0c" * ((size - 12) // 2))
