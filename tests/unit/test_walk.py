"""The shared record walk: finds records in wire form and refuses what runs past the message."""

from __future__ import annotations

import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from node_dns.answer import walk


def nodata_reply() -> bytes:
    query = dns.message.make_query("web.lb.example.net", "AAAA")
    reply = dns.message.make_response(query)
    reply.authority.append(
        dns.rrset.from_text(
            "lb.example.net.", 30, "IN", "SOA", "ns1.lb.example.net. admin.example.net. 77 60 30 600 30"
        )
    )
    return reply.to_wire()


def test_the_records_after_the_question_are_found_in_order() -> None:
    wire = nodata_reply()
    qd, an, ns, ar = walk.counts(wire)

    found = list(walk.records(wire, walk.question_end(wire, qd), an + ns + ar))

    assert [record.rtype for record in found] == [dns.rdatatype.SOA]
    assert found[0].end == len(wire)


def test_the_serial_of_an_soa_is_found_past_its_two_names() -> None:
    wire = nodata_reply()
    start = walk.question_end(wire, 1)
    (soa,) = walk.records(wire, start, 1)

    at = walk.soa_serial_at(wire, soa)

    assert int.from_bytes(wire[at : at + 4], "big") == 77


def test_a_record_whose_rdata_runs_past_the_message_is_refused() -> None:
    wire = nodata_reply()
    with pytest.raises(walk.Malformed):
        list(walk.records(wire[:-1], walk.question_end(wire, 1), 1))


def test_a_name_that_runs_past_the_message_is_refused() -> None:
    with pytest.raises(walk.Malformed):
        walk.skip_name(b"\x03www\x07exam", 0)


def test_a_label_type_other_than_a_pointer_is_refused() -> None:
    with pytest.raises(walk.Malformed):
        walk.skip_name(b"\x40abc\x00", 0)


def test_a_compression_pointer_ends_the_name() -> None:
    assert walk.skip_name(b"\x03www\xc0\x0c", 0) == 6


def test_a_record_that_is_not_an_soa_has_no_serial() -> None:
    with pytest.raises(walk.Malformed):
        walk.soa_serial_at(b"", walk.Record(0, dns.rdatatype.A, 0, 4))


def test_a_message_shorter_than_its_header_is_refused() -> None:
    with pytest.raises(walk.Malformed):
        walk.counts(b"\x00" * 11)
