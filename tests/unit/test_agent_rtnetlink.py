"""The rtnetlink wire format the agent reads: messages as the kernel lays them out (built here
byte by byte from linux/netlink.h, rtnetlink.h, if_addr.h), decoded into links and addresses.
The netns tests read the same format from a real kernel."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from node_dns.agent import rtnetlink as rt


def attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def message(kind: int, payload: bytes, *, flags: int = rt.NLM_F_MULTI, seq: int = 7) -> bytes:
    raw = struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload
    return raw + b"\0" * (-len(raw) % 4)


def newaddr(family: int, index: int, attrs: bytes, *, flags: int = 0) -> bytes:
    return struct.pack("=BBBBI", family, 24, flags, 0, index) + attrs


def test_a_link_dump_entry_gives_index_name_and_up() -> None:
    payload = struct.pack("=BxHiII", 0, 1, 3, 0x1043, 0) + attr(rt.IFLA_IFNAME, b"eth0\0")

    assert rt.link(payload) == rt.Link(3, "eth0", True)


def test_a_link_that_is_down() -> None:
    payload = struct.pack("=BxHiII", 0, 1, 4, 0x1002, 0) + attr(rt.IFLA_IFNAME, b"eth1\0")

    assert rt.link(payload).up is False


def test_an_ipv4_address_with_its_label() -> None:
    attrs = (
        attr(rt.IFA_ADDRESS, socket.inet_aton("11.0.0.10"))
        + attr(rt.IFA_LOCAL, socket.inet_aton("11.0.0.10"))
        + attr(rt.IFA_LABEL, b"eth0:1\0")
    )

    found = rt.address(newaddr(socket.AF_INET, 3, attrs))

    assert found == rt.Address(3, ipaddress.ip_address("11.0.0.10"), 0, "eth0:1")


def test_on_a_point_to_point_link_the_local_end_is_the_address() -> None:
    attrs = attr(rt.IFA_ADDRESS, socket.inet_aton("11.9.9.9")) + attr(
        rt.IFA_LOCAL, socket.inet_aton("11.0.0.1")
    )

    found = rt.address(newaddr(socket.AF_INET, 2, attrs))

    assert found is not None and found.ip == ipaddress.ip_address("11.0.0.1")


def test_ifa_flags_carry_the_bits_the_header_cannot() -> None:
    """The header's flag byte holds only the low 8 bits; IFA_FLAGS has all 32."""
    ip = ipaddress.ip_address("2001:db8::1")
    attrs = attr(rt.IFA_ADDRESS, ip.packed) + attr(rt.IFA_FLAGS, struct.pack("=I", 0x240))

    found = rt.address(newaddr(socket.AF_INET6, 5, attrs, flags=0x40))

    assert found is not None and found.flags == 0x240


def test_without_ifa_flags_the_header_flags_count() -> None:
    ip = ipaddress.ip_address("2001:db8::1")

    found = rt.address(newaddr(socket.AF_INET6, 5, attr(rt.IFA_ADDRESS, ip.packed), flags=0x20))

    assert found is not None and found.flags == 0x20


def test_lifetimes_come_from_cacheinfo_and_forever_is_none() -> None:
    ip = ipaddress.ip_address("2001:db8::1")
    timed = attr(rt.IFA_CACHEINFO, struct.pack("=IIII", 0, 600, 10, 20))
    forever = attr(rt.IFA_CACHEINFO, struct.pack("=IIII", 0xFFFFFFFF, 0xFFFFFFFF, 10, 20))

    deprecated = rt.address(newaddr(socket.AF_INET6, 5, attr(rt.IFA_ADDRESS, ip.packed) + timed))
    permanent = rt.address(newaddr(socket.AF_INET6, 5, attr(rt.IFA_ADDRESS, ip.packed) + forever))

    assert deprecated is not None and (deprecated.preferred, deprecated.valid) == (0, 600)
    assert permanent is not None and (permanent.preferred, permanent.valid) == (None, None)


def test_unknown_attributes_are_skipped_by_their_length() -> None:
    ip = ipaddress.ip_address("11.0.0.10")
    attrs = attr(99, b"\x01\x02\x03") + attr(rt.IFA_LOCAL, ip.packed) + attr(200, b"")

    found = rt.address(newaddr(socket.AF_INET, 3, attrs))

    assert found is not None and found.ip == ip


def test_an_entry_without_an_address_is_none() -> None:
    assert rt.address(newaddr(socket.AF_INET, 3, attr(rt.IFA_LABEL, b"eth0\0"))) is None


def test_a_datagram_holds_several_messages_each_aligned() -> None:
    first = message(rt.RTM_NEWADDR, b"\x01\x02\x03")  # odd length: padded to 4
    second = message(rt.NLMSG_DONE, struct.pack("=i", 0), seq=8)

    found = list(rt.messages(first + second))

    assert [(m.type, m.seq, m.payload) for m in found] == [
        (rt.RTM_NEWADDR, 7, b"\x01\x02\x03"),
        (rt.NLMSG_DONE, 8, b"\0\0\0\0"),
    ]


def test_a_truncated_message_is_an_error_not_a_short_read() -> None:
    whole = message(rt.RTM_NEWADDR, b"\0" * 40)

    with pytest.raises(ValueError, match="netlink message"):
        list(rt.messages(whole[:30]))


def test_an_error_message_gives_its_errno() -> None:
    refused = rt.Message(rt.NLMSG_ERROR, 0, 1, struct.pack("=i", -13) + b"\0" * 16)
    acknowledged = rt.Message(rt.NLMSG_ERROR, 0, 1, struct.pack("=i", 0) + b"\0" * 16)

    assert (rt.error_code(refused), rt.error_code(acknowledged)) == (13, 0)


def test_a_dump_request_asks_every_family() -> None:
    request = rt.dump_request(rt.RTM_GETADDR, 42)

    length, kind, flags, seq, port = struct.unpack_from("=IHHII", request)
    assert (length, kind, seq, port) == (len(request), rt.RTM_GETADDR, 42, 0)
    assert flags == rt.NLM_F_REQUEST | rt.NLM_F_DUMP
    assert request[16] == socket.AF_UNSPEC
