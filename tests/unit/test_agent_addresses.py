"""Which interface addresses the agent publishes: the pure selection rules."""

from __future__ import annotations

import ipaddress

import pytest

from node_dns.agent import addresses as a

GLOBAL4 = "11.0.0.10"
GLOBAL6 = "3ffe::10"


def addr(ip: str, interface: str = "eth0", flags: int = 0, up: bool = True) -> a.InterfaceAddress:
    return a.InterfaceAddress(interface, ipaddress.ip_address(ip), flags, up)


def published(*found: a.InterfaceAddress, policy: a.Policy | None = None) -> str:
    return a.select(found, policy or a.Policy()).annotation()


def test_global_addresses_of_a_plain_interface_are_published() -> None:
    assert published(addr(GLOBAL4), addr(GLOBAL6)) == f"{GLOBAL4},{GLOBAL6}"


def test_private_and_link_local_addresses_are_left_out() -> None:
    assert published(addr("192.168.1.5"), addr("fe80::1"), addr("fd00::5"), addr(GLOBAL4)) == GLOBAL4


@pytest.mark.parametrize(
    "interface",
    ["lo", "cni0", "flannel.1", "cali12ab", "veth0a1b", "docker0", "wg0", "tailscale0", "kube-ipvs0"],
)
def test_default_exclusions_cover_loopback_overlays_containers_and_meshes(interface: str) -> None:
    assert published(addr(GLOBAL4, interface)) == ""


def test_include_patterns_limit_the_interfaces_read() -> None:
    policy = a.Policy(include=("eth*",))

    assert published(addr(GLOBAL4, "eth1"), addr("11.0.0.11", "ens3"), policy=policy) == GLOBAL4


def test_exclude_wins_over_include() -> None:
    policy = a.Policy(include=("wg*", "eth0"))

    assert published(addr(GLOBAL4, "wg0"), addr("11.0.0.11", "eth0"), policy=policy) == "11.0.0.11"


def test_patterns_are_case_sensitive_as_linux_names_are() -> None:
    assert published(addr(GLOBAL4, "WG0")) == GLOBAL4


def test_addresses_of_a_down_interface_are_left_out() -> None:
    assert published(addr(GLOBAL4, up=False)) == ""


def test_tentative_and_dad_failed_addresses_are_left_out() -> None:
    tentative = addr(GLOBAL6, flags=a.IFA_F_TENTATIVE)
    failed = addr("3ffe::11", flags=a.IFA_F_DADFAILED)

    assert published(tentative, failed) == ""


def test_deprecated_addresses_are_left_out() -> None:
    assert published(addr(GLOBAL6, flags=a.IFA_F_DEPRECATED), addr("3ffe::11")) == "3ffe::11"


def test_temporary_addresses_are_left_out_by_default() -> None:
    assert published(addr(GLOBAL6, flags=a.IFA_F_TEMPORARY)) == ""


def test_secondary_ipv4_addresses_are_published() -> None:
    """0x01 is IFA_F_SECONDARY for IPv4 (the same bit as IPv6's temporary)."""
    assert published(addr(GLOBAL4), addr("11.0.0.11", flags=0x01)) == f"{GLOBAL4},11.0.0.11"


def test_temporary_addresses_are_published_when_asked() -> None:
    policy = a.Policy(temporary=True)

    assert published(addr(GLOBAL6, flags=a.IFA_F_TEMPORARY), policy=policy) == GLOBAL6


def test_allowed_networks_admit_lan_addresses() -> None:
    policy = a.Policy(allowed=(ipaddress.ip_network("192.168.1.0/24"),))

    assert published(addr("192.168.1.5"), addr("192.168.2.5"), policy=policy) == "192.168.1.5"


def test_allowed_networks_never_admit_loopback_or_link_local() -> None:
    policy = a.Policy(
        include=("*",),
        exclude=(),
        allowed=(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")),
    )

    found = [addr("127.0.0.1", "lo"), addr("169.254.3.3"), addr("fe80::1"), addr("::1", "lo")]

    assert published(*found, policy=policy) == ""


def test_families_limit_what_is_published() -> None:
    policy = a.Policy(families=frozenset({6}))

    assert published(addr(GLOBAL4), addr(GLOBAL6), policy=policy) == GLOBAL6


def test_the_annotation_is_ordered_ipv4_first_and_numerically() -> None:
    found = [addr("3ffe::2"), addr("11.0.0.20"), addr("3ffe::1"), addr("11.0.0.3")]

    assert published(*found) == "11.0.0.3,11.0.0.20,3ffe::1,3ffe::2"


def test_one_address_on_two_interfaces_is_published_once() -> None:
    assert published(addr(GLOBAL4, "eth0"), addr(GLOBAL4, "eth1")) == GLOBAL4


def test_the_cap_lets_the_families_take_turns() -> None:
    found = [addr("11.0.0.1"), addr("11.0.0.2"), addr("11.0.0.3"), addr("3ffe::1")]

    selection = a.select(found, a.Policy(limit=2))

    assert selection.annotation() == "11.0.0.1,3ffe::1"
    assert selection.capped == 2


def test_no_qualifying_address_gives_an_empty_selection() -> None:
    selection = a.select([addr("10.0.0.1")], a.Policy())

    assert selection.ips == () and selection.annotation() == ""


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        (addr(GLOBAL4, "docker0"), "interface excluded"),
        (addr(GLOBAL4, up=False), "interface down"),
        (addr(GLOBAL6, flags=a.IFA_F_TENTATIVE), "tentative"),
        (addr(GLOBAL6, flags=a.IFA_F_DEPRECATED), "deprecated"),
        (addr(GLOBAL6, flags=a.IFA_F_TEMPORARY), "temporary"),
        (addr("10.0.0.1"), "not globally reachable"),
        (addr("fe80::1"), "loopback, link-local, multicast or unspecified"),
    ],
)
def test_each_refusal_names_its_reason(found: a.InterfaceAddress, reason: str) -> None:
    assert a.refusal(found, a.Policy()) == reason
