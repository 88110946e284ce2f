"""Zone transfers as pure functions: TSIG, AXFR/IXFR messages, the journal, access rules.

dnspython is the independent reference: it parses every message we pack and checks every MAC we
compute, and it signs the requests we verify.
"""

from __future__ import annotations

import base64
import time

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import pytest

from node_dns import access, tsigkeys
from node_dns.answer import transfer, tsig, xfr
from node_dns.protocol import Rcode
from node_dns.zone import journal as journal_mod
from node_dns.zone.writer import Zone
from tests.unit import zonekit

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
KEYRING = dns.tsigkeyring.from_text({"xfr.": ("hmac-sha256", SECRET)})


def _state(count: int = 3, per_area: int = 3) -> Zone:
    nodes = [
        zonekit.facts(f"n{i}", [f"area{i // per_area}"], [f"10.0.{i // 250}.{i % 250 + 1}"])
        for i in range(count)
    ]
    return zonekit.synced_zone(nodes)


ZONE_NODES = 5000


def big_state() -> Zone:
    """5,000 nodes in 100 areas: the benchmark's zone."""
    return _state(ZONE_NODES, per_area=50)


def _gate(state: Zone, rules: str = "key=xfr; 127.0.0.0/8", max_transfers: int = 10) -> xfr.Transfers:
    journal = journal_mod.Journal(100, 1 << 20)
    state.subscribe(journal.record)
    options = xfr.Options(
        keys={k.name: k for k in tsigkeys.parse_keys(f"hmac-sha256:xfr:{SECRET}")},
        rules=access.parse(rules),
        max_transfers=max_transfers,
    )
    # The real clock: dnspython checks the times of signed replies against its own.
    return xfr.Transfers(options, lambda: state.snapshot, journal, clock=time.time)


def _answers(
    reply: xfr.Reply | None, keyring: object = None, request: dns.message.Message | None = None
) -> list[dns.message.Message]:
    assert reply is not None
    out = []
    ctx = None
    multi = False
    for wire in reply.messages:
        msg = dns.message.from_wire(
            wire,
            keyring=keyring,
            request_mac=request.mac if request is not None and keyring else b"",
            xfr=True,
            origin=None,
            tsig_ctx=ctx,
            multi=multi,
            one_rr_per_rrset=True,
        )
        ctx = msg.tsig_ctx
        multi = True
        out.append(msg)
    return out


def _axfr_request(key: bool = True) -> dns.message.Message:
    request = dns.message.make_query(zonekit.ZONE, "AXFR")
    if key:
        request.use_tsig(KEYRING, keyname="xfr.")
    return request


def _records(messages: list[dns.message.Message]) -> list[str]:
    return [rr.to_text() for m in messages for rr in m.answer]


# --- TSIG ---------------------------------------------------------------------------------------
def test_keys_parse_in_kdig_form_with_sha256_as_the_default_algorithm() -> None:
    keys = tsigkeys.parse_keys(f"hmac-sha512:a:{SECRET}; b.:{SECRET}")

    assert [(k.name, k.algorithm) for k in keys] == [("a", "hmac-sha512"), ("b", "hmac-sha256")]


def test_bind_key_clauses_parse_with_comments() -> None:
    text = f'# made by tsig-keygen\nkey "xfr" {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}"; // ok\n}};\n'

    (key,) = tsigkeys.parse_bind_keys(text)

    assert (key.name, key.algorithm, key.secret) == ("xfr", "hmac-sha256", base64.b64decode(SECRET))


@pytest.mark.parametrize(
    "text",
    ["xfr", "hmac-sha999:xfr:" + SECRET, "xfr:not base64!", f"xfr:{SECRET};xfr:{SECRET}"],
)
def test_a_bad_key_is_an_error_that_never_shows_the_secret(text: str) -> None:
    with pytest.raises(tsigkeys.KeyError_) as raised:
        tsigkeys.parse_keys(text)

    assert SECRET not in str(raised.value)


def test_a_request_signed_by_dnspython_verifies() -> None:
    request = _axfr_request()
    wire = request.to_wire()
    record = tsig.find(wire)
    assert record is not None

    keys = {k.name: k for k in tsigkeys.parse_keys(f"xfr:{SECRET}")}

    verdict = tsig.verify(wire, record, keys, record.time_signed)

    assert verdict.error == tsig.TsigError.NOERROR
    assert verdict.request_mac == request.mac


def test_a_request_signed_here_verifies_in_dnspython() -> None:
    (key,) = tsigkeys.parse_keys(f"xfr:{SECRET}")
    message = dns.message.make_query(zonekit.ZONE, "SOA").to_wire()

    wire, mac = tsig.sign(message, key, int(time.time()))

    parsed = dns.message.from_wire(wire, keyring=KEYRING)
    assert parsed.had_tsig and parsed.mac == mac


# --- the gate -----------------------------------------------------------------------------------
def test_a_signed_axfr_from_an_allowed_key_is_the_zone_soa_first_and_last() -> None:
    state = _state(5)
    gate = _gate(state, rules="key=xfr")
    request = _axfr_request()

    messages = _answers(gate.handle(request.to_wire(), "192.0.2.1", tcp=True), KEYRING, request)

    records = [rr for m in messages for rr in m.answer]
    assert records[0].rdtype == dns.rdatatype.SOA and records[-1].rdtype == dns.rdatatype.SOA
    assert records[0].to_text() == records[-1].to_text()
    assert {rr.to_text() for rr in records} >= {f"area0.{zonekit.ZONE}. 30 IN A 10.0.0.1"}
    assert sum(1 for rr in records if rr.rdtype == dns.rdatatype.SOA) == 2


def test_an_unsigned_axfr_from_a_prefix_that_is_not_allowed_is_refused_without_data() -> None:
    gate = _gate(_state(), rules="10.0.0.0/8")

    (message,) = _answers(gate.handle(_axfr_request(key=False).to_wire(), "192.0.2.1", tcp=True))

    assert message.rcode() == dns.rcode.REFUSED and not message.answer
    assert gate.stats.transfers == {("axfr", "refused"): 1}


def test_nothing_is_allowed_without_rules() -> None:
    gate = _gate(_state(), rules="")
    request = _axfr_request()

    (message,) = _answers(gate.handle(request.to_wire(), "127.0.0.1", tcp=True), KEYRING, request)

    assert message.rcode() == dns.rcode.REFUSED and not message.answer


def test_a_wrong_secret_gets_badsig_and_no_data() -> None:
    wrong = dns.tsigkeyring.from_text({"xfr.": ("hmac-sha256", base64.b64encode(b"x" * 32).decode())})
    request = dns.message.make_query(zonekit.ZONE, "AXFR")
    request.use_tsig(wrong, keyname="xfr.")
    gate = _gate(_state())

    reply = gate.handle(request.to_wire(), "127.0.0.1", tcp=True)

    assert reply is not None
    (wire,) = list(reply.messages)
    record = tsig.find(wire)
    assert record is not None and record.error == tsig.TsigError.BADSIG and record.mac == b""
    assert wire[3] & 0xF == Rcode.NOTAUTH and wire[6:8] == b"\x00\x00"
    assert gate.stats.tsig_errors == {"BADSIG": 1}


def test_an_unknown_key_gets_badkey() -> None:
    other = dns.tsigkeyring.from_text({"other.": ("hmac-sha256", SECRET)})
    request = dns.message.make_query(zonekit.ZONE, "AXFR")
    request.use_tsig(other, keyname="other.")

    reply = _gate(_state()).handle(request.to_wire(), "127.0.0.1", tcp=True)

    assert reply is not None
    record = tsig.find(next(reply.messages))
    assert record is not None and record.error == tsig.TsigError.BADKEY


def test_a_stale_signature_gets_badtime_signed_with_our_time() -> None:
    state = _state()
    gate = _gate(state)
    gate._clock = lambda: time.time() + 10_000
    request = _axfr_request()
    request.use_tsig(KEYRING, keyname="xfr.", fudge=300)
    wire = request.to_wire()

    reply = gate.handle(wire, "127.0.0.1", tcp=True)

    assert reply is not None
    answer = next(reply.messages)
    record = tsig.find(answer)
    assert record is not None and record.error == tsig.TsigError.BADTIME and record.mac


def test_udp_axfr_is_refused() -> None:
    request = _axfr_request()

    (message,) = _answers(_gate(_state()).handle(request.to_wire(), "127.0.0.1", tcp=False), KEYRING, request)

    assert message.rcode() == dns.rcode.REFUSED


def test_the_transfer_cap_refuses_the_one_over_it() -> None:
    gate = _gate(_state(), max_transfers=1)
    first = gate.handle(_axfr_request().to_wire(), "127.0.0.1", tcp=True)
    assert first is not None and first.streamed

    request = _axfr_request()
    (message,) = _answers(gate.handle(request.to_wire(), "127.0.0.1", tcp=True), KEYRING, request)

    assert message.rcode() == dns.rcode.REFUSED
    gate.finished(first, 100, ok=True)
    assert gate.active == 0


def _ixfr_request(serial: int) -> dns.message.Message:
    request = dns.message.make_query(zonekit.ZONE, "IXFR")
    soa = dns.rrset.from_text(zonekit.ZONE + ".", 0, "IN", "SOA", f". . {serial} 0 0 0 0")
    request.authority.append(soa)
    request.use_tsig(KEYRING, keyname="xfr.")
    return request


def test_ixfr_from_a_journalled_serial_carries_only_the_condensed_change() -> None:
    state = _state(4, per_area=2)
    gate = _gate(state)
    old = state.snapshot.serial
    state.apply("n9", zonekit.facts("n9", ["area0"], ["10.9.9.9"]), "200")
    state.apply("n8", zonekit.facts("n8", ["area1"], ["10.8.8.8"]), "201")
    state.apply("n8", None, "202")  # added and removed again: in neither list
    request = _ixfr_request(old)

    messages = _answers(gate.handle(request.to_wire(), "127.0.0.1", tcp=True), KEYRING, request)

    texts = _records(messages)
    new = state.snapshot.serial
    assert [t.split()[6] for t in texts if " SOA " in t] == [str(new), str(old), str(new), str(new)]
    assert [t for t in texts if " SOA " not in t] == [
        f"area0.{zonekit.ZONE}. 30 IN A 10.9.9.9",
        f"v4.area0.{zonekit.ZONE}. 30 IN A 10.9.9.9",
    ]


def test_ixfr_from_outside_the_journal_is_the_whole_zone() -> None:
    state = _state()
    gate = _gate(state)
    request = _ixfr_request(state.snapshot.serial - 50)
    state.apply("n9", zonekit.facts("n9", ["area0"], ["10.9.9.9"]), "200")

    messages = _answers(gate.handle(request.to_wire(), "127.0.0.1", tcp=True), KEYRING, request)

    texts = _records(messages)
    assert sum(" SOA " in t for t in texts) == 2 and len(texts) > 3
    assert gate.stats.transfers == {}  # counted when the transport finishes


def test_ixfr_from_a_serial_in_the_future_is_the_whole_zone() -> None:
    state = _state()
    gate = _gate(state)
    request = _ixfr_request(state.snapshot.serial + 5)

    texts = _records(_answers(gate.handle(request.to_wire(), "127.0.0.1", tcp=True), KEYRING, request))

    assert sum(" SOA " in t for t in texts) == 2 and len(texts) > 3
    assert texts[0] == texts[-1]


def test_udp_ixfr_is_the_soa_alone_when_current_else_truncated() -> None:
    state = _state()
    gate = _gate(state)
    request = _ixfr_request(state.snapshot.serial)
    (current,) = _answers(gate.handle(request.to_wire(), "127.0.0.1", tcp=False), KEYRING, request)
    request = _ixfr_request(state.snapshot.serial - 1)
    (behind,) = _answers(gate.handle(request.to_wire(), "127.0.0.1", tcp=False), KEYRING, request)

    assert [rr.rdtype for rr in current.answer] == [dns.rdatatype.SOA]
    assert behind.flags & dns.flags.TC and not behind.answer


def test_a_signed_soa_query_gets_the_usual_answer_signed() -> None:
    request = dns.message.make_query(zonekit.ZONE, "SOA")
    request.use_tsig(KEYRING, keyname="xfr.")
    assert xfr.Transfers.claims(request.to_wire())

    (message,) = _answers(
        _gate(_state()).handle(request.to_wire(), "203.0.113.1", tcp=False), KEYRING, request
    )

    assert message.had_tsig and message.answer[0].rdtype == dns.rdatatype.SOA


def test_only_transfers_and_signed_messages_are_claimed() -> None:
    assert not xfr.Transfers.claims(dns.message.make_query(zonekit.ZONE, "A").to_wire())
    assert not xfr.Transfers.claims(dns.message.make_query(zonekit.ZONE, "A", use_edns=0).to_wire())
    assert xfr.Transfers.claims(dns.message.make_query(zonekit.ZONE, "AXFR").to_wire())


# --- packing ----------------------------------------------------------------------------------
def test_a_big_zone_fills_messages_up_to_64k_with_compressed_owners() -> None:
    state = big_state()
    bodies = transfer.AxfrCache().bodies(state.snapshot)
    wires = list(transfer.messages(1, 0, _question(), bodies))

    assert all(len(w) <= transfer.MAX_MESSAGE for w in wires)
    # Sizes are estimated up (a new owner as if written in full): messages end a little short.
    assert all(len(w) > transfer.MAX_MESSAGE - 4096 for w in wires[:-1])
    records = sum(len(dns.message.from_wire(w, xfr=True, one_rr_per_rrset=True).answer) for w in wires)
    # A and v4.A per node, SOA twice, 3 NS, 3 glue, and the v6. marker of each of the 100 areas
    assert records == 5000 * 2 + 2 + 3 + 3 + 100
    # An A record is 14 bytes after its owner; a full owner here is 27. Each message writes
    # every owner it holds first, within a pointer's reach, so nearly every owner is 2 bytes.
    assert sum(map(len, wires)) < records * (14 + 3)


def test_a_full_transfer_keeps_its_soas_first_and_last_and_every_record() -> None:
    state = big_state()
    wires = list(transfer.messages(1, 0, _question(), transfer.AxfrCache().bodies(state.snapshot)))
    parsed = [dns.message.from_wire(w, xfr=True, one_rr_per_rrset=True) for w in wires]
    records = [rr for m in parsed for rr in m.answer]

    assert records[0].rdtype == dns.rdatatype.SOA and records[-1].rdtype == dns.rdatatype.SOA
    assert all(rr.rdtype != dns.rdatatype.SOA for rr in records[1:-1])
    expected = {(owner, tail) for owner, rrset in journal_mod.rrsets(state.snapshot) for tail in rrset.tails}
    assert len(records) - 2 == len(expected)


def _question() -> bytes:
    return dns.name.from_text(zonekit.ZONE).to_wire() + b"\x00\xfc\x00\x01"


# --- journal ----------------------------------------------------------------------------------
def test_the_journal_keeps_within_its_entry_and_byte_bounds() -> None:
    journal = journal_mod.Journal(max_entries=2, max_bytes=10_000)
    record = ((b"a", b"lb"), b"\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\x0a\x00\x00\x01")
    for serial in range(1, 5):
        journal.append(serial, serial + 1, [], [record])

    assert [e.old_serial for e in journal.entries] == [3, 4]
    assert journal.since(2) is None and journal.since(3) is not None
    journal.append(5, 6, [record] * 1000, [])
    assert len(journal) == 0  # one change over the byte bound: only a full transfer carries it


# --- access -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("client", "key", "allowed"),
    [
        ("10.1.2.3", None, True),
        ("192.0.2.1", None, False),
        ("192.0.2.1", "xfr", True),
        ("2001:db8::1", "sec", True),
        ("2001:db9::1", "sec", False),
        ("::ffff:10.0.0.1", None, True),
    ],
)
def test_access_rules(client: str, key: str | None, allowed: bool) -> None:
    rules = access.parse("key=xfr; 10.0.0.0/8; 2001:db8::/32+key=sec")

    assert access.allowed(rules, client, key) is allowed


def test_a_bad_access_entry_names_itself() -> None:
    with pytest.raises(access.RuleError, match=r"'10\.0\.0\.0/33'"):
        access.parse("10.0.0.0/33")
