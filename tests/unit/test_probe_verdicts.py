"""The verdict table: which addresses it lets through, and its ConfigMap form."""

from __future__ import annotations

import ipaddress

import pytest

from node_dns.settings import probe_spec as spec
from node_dns.sources.probes import verdicts

TCP = spec.parse("tcp:443")
IP = ipaddress.ip_address("127.0.0.11")


def table(**kwargs: object) -> verdicts.Table:
    return verdicts.Table(**kwargs)  # type: ignore[arg-type]


def test_unprobed_target_is_served_until_the_first_round_completes() -> None:
    assert table().usable("n1", "127.0.0.11", TCP.key)
    assert not table(complete=frozenset({TCP.key})).usable("n1", "127.0.0.11", TCP.key)


def test_verdicts_decide_once_known() -> None:
    t = table(verdicts={("n1", "127.0.0.11", TCP.key): False, ("n2", "127.0.0.12", TCP.key): True})
    assert not t.usable("n1", "127.0.0.11", TCP.key)
    assert t.usable("n2", "127.0.0.12", TCP.key)


def test_configmap_round_trip_is_exact_and_deterministic() -> None:
    original = table(
        verdicts={("n1", "127.0.0.11", TCP.key): False, ("n2", "::1", "dns:53:x every=2"): True},
        complete=frozenset({TCP.key}),
        fault=True,
        leader="pod-a",
    )
    body = verdicts.encode(original)
    assert verdicts.decode(body) == original
    assert verdicts.encode(original) == body
    assert body["data"]["unreachable"] == f"n1 127.0.0.11 {TCP.key}\n"


def test_five_thousand_nodes_fit_far_below_the_object_limit() -> None:
    big = table(
        verdicts={
            (f"node-{n:05d}", f"10.{n // 256 % 256}.{n % 256}.1", TCP.key): n % 7 != 0 for n in range(5000)
        },
        complete=frozenset({TCP.key}),
    )
    size = len(verdicts.encode(big)["binaryData"]["verdicts.json.gz"])
    assert size < 200_000


@pytest.mark.parametrize(
    "body",
    [{}, {"binaryData": {"verdicts.json.gz": "not base64 gzip"}}, {"binaryData": {"verdicts.json.gz": ""}}],
)
def test_undecodable_objects_raise_decode_error(body: dict[str, object]) -> None:
    with pytest.raises(verdicts.DecodeError):
        verdicts.decode(body)


def test_reachability_uses_the_area_probe_and_falls_back_to_ready_only() -> None:
    plan = spec.Plan(None, {"home": TCP})
    t = table(verdicts={("n1", str(IP), TCP.key): False}, complete=frozenset({TCP.key}))
    assert not verdicts.Reachability(plan, t).usable("n1", IP, "home")
    assert verdicts.Reachability(plan, t).usable("n1", IP, "lab")  # not probed
    assert verdicts.Reachability(plan, None).usable("n1", IP, "home")  # fallback
    assert "unreachable" in verdicts.Reachability(plan, t).why("n1", IP, "home")
    assert "Ready-only" in verdicts.Reachability(plan, None).why("n1", IP, "home")
