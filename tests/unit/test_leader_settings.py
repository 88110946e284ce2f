"""The leader election settings: defaults, resolution of identity/namespace, client-go's checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from node_dns.cli import build_parser, load_settings
from node_dns.settings import Settings, describe_error, startup
from node_dns.settings.errors import SettingError

REQUIRED = {"zone": "lb.example.net", "nameservers": "ns1.example.org", "soa_email": "h@example.net"}


def make(**values: Any) -> Settings:
    return Settings(**REQUIRED, **values)


def error_of(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        make(**values)
    return describe_error(caught.value)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAME", raising=False)
    for name in list(__import__("os").environ):
        if name.startswith("NODE_DNS_"):
            monkeypatch.delenv(name)


def test_defaults_match_client_gos_core_components() -> None:
    settings = make()
    assert settings.leader_elect is False
    assert settings.leader_lease_name == "node-dns"
    assert (
        settings.leader_lease_duration,
        settings.leader_renew_deadline,
        settings.leader_retry_period,
    ) == (15.0, 10.0, 2.0)
    assert settings.leader_record_events is False  # nothing to record without a leader
    assert make(leader_elect=True).leader_record_events is True
    assert make(leader_elect=True, leader_record_events=False).leader_record_events is False


def resolved(**values: Any) -> Settings:
    return startup.resolve(make(**values), namespace_file=ABSENT)


ABSENT = __import__("pathlib").Path("/nonexistent/serviceaccount/namespace")


def test_validation_draws_no_identity_and_reads_no_namespace() -> None:
    settings = make()
    assert (settings.leader_identity, settings.leader_lease_namespace) == (None, None)


def test_identity_is_the_pod_name_else_hostname_and_a_random_suffix(monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = resolved().leader_identity, resolved().leader_identity
    assert one and two and one != two
    assert one.rsplit("_", 1)[0] == two.rsplit("_", 1)[0]
    monkeypatch.setenv("POD_NAME", "node-dns-7d9f-abcde")
    assert resolved().leader_identity == "node-dns-7d9f-abcde"
    assert resolved(leader_identity="given").leader_identity == "given"


def test_lease_namespace_defaults_outside_a_pod() -> None:
    assert resolved().leader_lease_namespace == "default"
    assert resolved(leader_lease_namespace="kube-system").leader_lease_namespace == "kube-system"


def test_lease_namespace_is_the_pods_own_inside_a_pod(tmp_path: Any) -> None:
    mounted = tmp_path / "namespace"
    mounted.write_text("node-dns\n")
    assert startup.resolve(make(), namespace_file=mounted).leader_lease_namespace == "node-dns"


def test_a_bad_value_found_at_startup_names_the_setting(tmp_path: Any) -> None:
    mounted = tmp_path / "namespace"
    mounted.write_text("Not_A_Namespace")
    with pytest.raises(SettingError) as caught:
        startup.resolve(make(), namespace_file=mounted)
    assert caught.value.name == "leader_lease_namespace"
    assert "'Not_A_Namespace' is not a valid namespace name" in caught.value.message
    with pytest.raises(SettingError) as too_long:
        startup.resolve(make(), environ={"POD_NAME": "x" * 254}, namespace_file=ABSENT)
    assert too_long.value.name == "leader_identity"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"leader_renew_deadline": 15},
            "invalid setting --leader-renew-deadline (NODE_DNS_LEADER_RENEW_DEADLINE): "
            "must be less than --leader-lease-duration (15), got 15",
        ),
        (
            {"leader_lease_duration": 4, "leader_renew_deadline": 3, "leader_retry_period": 2.5},
            "invalid setting --leader-retry-period (NODE_DNS_LEADER_RETRY_PERIOD): must be less than "
            "--leader-renew-deadline / 1.2 (2.5; 1.2 is client-go's jitter factor), got 2.5",
        ),
        (
            {"leader_retry_period": 0},
            "invalid setting --leader-retry-period (NODE_DNS_LEADER_RETRY_PERIOD): "
            "Input should be greater than 0",
        ),
        (
            {"leader_record_events": True},
            "invalid setting --leader-record-events (NODE_DNS_LEADER_RECORD_EVENTS): "
            "needs --leader-elect: only an elected leader records events",
        ),
        (
            {"leader_lease_namespace": "Not_A_Namespace"},
            "invalid setting --leader-lease-namespace (NODE_DNS_LEADER_LEASE_NAMESPACE): "
            "'Not_A_Namespace' is not a valid namespace name (a DNS label)",
        ),
    ],
)
def test_bad_timings_are_one_line_naming_the_setting(values: dict[str, Any], expected: str) -> None:
    assert error_of(**values) == expected


def test_short_test_timings_are_valid() -> None:
    settings = make(
        leader_elect=True, leader_lease_duration=4, leader_renew_deadline=3, leader_retry_period=0.5
    )
    assert settings.leader_retry_period == 0.5


def test_flags_and_env_vars_reach_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--zone=lb.example.net",
            "--nameservers=ns1.example.org",
            "--soa-email=h@example.net",
            "--leader-elect",
            "--leader-identity=replica-1",
            "--leader-lease-duration=4",
            "--leader-renew-deadline=3",
            "--leader-retry-period=0.5",
            "--no-leader-record-events",
        ]
    )
    settings = load_settings({name: getattr(args, name, None) for name in Settings.model_fields})
    assert (settings.leader_elect, settings.leader_identity, settings.leader_record_events) == (
        True,
        "replica-1",
        False,
    )
    monkeypatch.setenv("NODE_DNS_LEADER_ELECT", "true")
    monkeypatch.setenv("NODE_DNS_LEADER_LEASE_NAMESPACE", "node-dns")
    from_env = make()
    assert (from_env.leader_elect, from_env.leader_lease_namespace) == (True, "node-dns")
