"""TSIG (RFC 8945): shared-secret keys, and signing and verifying DNS messages with them.

Hand-written on the standard library's ``hmac``: the whole mechanism is one record appended to
a message and a MAC over well-defined bytes, and doing it here keeps the wire bytes under our
control (pre-encoded transfer messages are signed without being parsed again). dnspython, used
by the tests, checks every signature we make and makes every signature we check.

Pure: the clock is a parameter.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from node_dns.answer import query, walk
from node_dns.protocol import CLASS_ANY, TYPE_TSIG, TsigError
from node_dns.tsigkeys import ALGORITHMS, ALIASES, Key, to_wire

__all__ = ["TsigError"]

DEFAULT_FUDGE = 300


# --- wire ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Record:
    """A TSIG record found at the end of a message."""

    start: int
    """Offset of the record in the message: what precedes it is what was signed."""
    key_name: str
    algorithm: str
    time_signed: int
    fudge: int
    mac: bytes
    original_id: int
    error: int
    other: bytes


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    labels, end = query.read_name(data, offset)
    return ".".join(label.decode("ascii", "replace").lower() for label in labels), end


def find(data: bytes) -> Record | None:
    """The TSIG record if it is the last record of ``data``; None if there is none.

    Raises ValueError for a message that cannot be walked, or a TSIG that is not last.
    """
    qd, an, ns, ar = walk.counts(data)
    if ar == 0:
        return None
    total = an + ns + ar
    for index, record in enumerate(walk.records(data, walk.question_end(data, qd), total)):
        if record.rtype == TYPE_TSIG:
            if index != total - 1:
                raise ValueError("TSIG is not the last record")
            return _parse(data, record.start, record.rdata, record.end)
    return None


def _parse(data: bytes, start: int, rdata: int, end: int) -> Record:
    key_name, _ = _read_name(data, start)
    algorithm, at = _read_name(data, rdata)
    if at + 10 > end:
        raise ValueError("TSIG rdata truncated")
    high, low, fudge, mac_size = struct.unpack_from("!HIHH", data, at)
    at += 10
    mac = data[at : at + mac_size]
    at += mac_size
    if at + 6 > end:
        raise ValueError("TSIG rdata truncated")
    original_id, error, other_len = struct.unpack_from("!HHH", data, at)
    at += 6
    other = data[at : at + other_len]
    if at + other_len != end:
        raise ValueError("TSIG rdata length mismatch")
    return Record(start, key_name, algorithm, (high << 32) | low, fudge, mac, original_id, error, other)


def unsigned(data: bytes, record: Record) -> bytes:
    """The message as it was before signing: TSIG removed, ARCOUNT less one, original ID."""
    (ar,) = struct.unpack_from("!H", data, 10)
    return (
        struct.pack("!H", record.original_id)
        + data[2:10]
        + struct.pack("!H", ar - 1)
        + data[12 : record.start]
    )


def _variables(key: Key, time_signed: int, fudge: int, error: int, other: bytes) -> bytes:
    return (
        key.wire_name
        + struct.pack("!HI", CLASS_ANY, 0)
        + key.wire_algorithm
        + _time(time_signed)
        + struct.pack("!HHH", fudge, error, len(other))
        + other
    )


def _time(seconds: int) -> bytes:
    return struct.pack("!HI", (seconds >> 32) & 0xFFFF, seconds & 0xFFFFFFFF)


def _mac(key: Key, *parts: bytes) -> bytes:
    digest = hmac.new(key.secret, digestmod=ALGORITHMS[key.algorithm])
    for part in parts:
        digest.update(part)
    return digest.digest()


def _prefixed(mac: bytes) -> bytes:
    return struct.pack("!H", len(mac)) + mac


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of checking a signed request: the key and MAC to sign the answer with, or an error."""

    error: TsigError
    key: Key | None
    record: Record
    request_mac: bytes = b""
    """The request's MAC; empty when the answer must go unsigned (BADKEY, BADSIG)."""


def verify(data: bytes, record: Record, keys: dict[str, Key], now: int) -> Verdict:
    """Check a request's TSIG (RFC 8945 §5.2: key, then MAC, then time)."""
    key = keys.get(record.key_name)
    if key is None or key.algorithm != ALIASES.get(record.algorithm, record.algorithm):
        return Verdict(TsigError.BADKEY, None, record)
    if len(record.mac) != key.mac_size:
        # Truncated MACs (RFC 8945 §5.2.2.1) are not accepted: nothing we serve needs them.
        return Verdict(TsigError.BADSIG if len(record.mac) < 10 else TsigError.BADTRUNC, key, record)
    expected = _mac(
        key,
        unsigned(data, record),
        _variables(key, record.time_signed, record.fudge, record.error, record.other),
    )
    if not hmac.compare_digest(expected, record.mac):
        return Verdict(TsigError.BADSIG, None, record)
    if abs(now - record.time_signed) > record.fudge:
        return Verdict(TsigError.BADTIME, key, record, record.mac)
    return Verdict(TsigError.NOERROR, key, record, record.mac)


def tsig_record(
    key: Key, *, original_id: int, time_signed: int, fudge: int, mac: bytes, error: int, other: bytes
) -> bytes:
    rdata = (
        key.wire_algorithm
        + _time(time_signed)
        + struct.pack("!H", fudge)
        + _prefixed(mac)
        + struct.pack("!HHH", original_id, error, len(other))
        + other
    )
    return key.wire_name + struct.pack("!HHIH", TYPE_TSIG, CLASS_ANY, 0, len(rdata)) + rdata


def _append(message: bytes, record: bytes) -> bytes:
    (ar,) = struct.unpack_from("!H", message, 10)
    return message[:10] + struct.pack("!H", ar + 1) + message[12:] + record


def sign(
    message: bytes,
    key: Key,
    now: int,
    *,
    request_mac: bytes = b"",
    error: int = 0,
    other: bytes = b"",
    fudge: int = DEFAULT_FUDGE,
) -> tuple[bytes, bytes]:
    """Sign a request (no ``request_mac``) or the first message of an answer; returns (wire, MAC)."""
    prefix = _prefixed(request_mac) if request_mac else b""
    mac = _mac(key, prefix, message, _variables(key, now, fudge, error, other))
    (qid,) = struct.unpack_from("!H", message, 0)
    return _append(
        message,
        tsig_record(key, original_id=qid, time_signed=now, fudge=fudge, mac=mac, error=error, other=other),
    ), mac


def unsigned_error(message: bytes, record: Record, error: TsigError) -> bytes:
    """An error answer carrying a TSIG with no MAC (BADKEY, BADSIG: we cannot or must not sign)."""
    rdata = (
        to_wire(record.algorithm)
        + _time(record.time_signed)
        + struct.pack("!HH", record.fudge, 0)
        + struct.pack("!HHH", record.original_id, int(error), 0)
    )
    tsig = to_wire(record.key_name) + struct.pack("!HHIH", TYPE_TSIG, CLASS_ANY, 0, len(rdata)) + rdata
    return _append(message, tsig)


class Stream:
    """Signs the messages of one multi-message answer (AXFR/IXFR over TCP, RFC 8945 §5.3.1).

    Every message is signed: the first over the request MAC and the full TSIG variables, each
    later one over the previous MAC, the message and the timers only.
    """

    def __init__(self, key: Key, request_mac: bytes, fudge: int = DEFAULT_FUDGE) -> None:
        self._key = key
        self._previous = request_mac
        self._fudge = fudge
        self._first = True

    def sign(self, message: bytes, now: int) -> bytes:
        if self._first:
            self._first = False
            wire, self._previous = sign(
                message, self._key, now, request_mac=self._previous, fudge=self._fudge
            )
            return wire
        mac = _mac(self._key, _prefixed(self._previous), message, _time(now), struct.pack("!H", self._fudge))
        self._previous = mac
        (qid,) = struct.unpack_from("!H", message, 0)
        return _append(
            message,
            tsig_record(
                self._key, original_id=qid, time_signed=now, fudge=self._fudge, mac=mac, error=0, other=b""
            ),
        )


def verify_answer(data: bytes, key: Key, request_mac: bytes, now: int) -> bool:
    """Check the signature of a single-message answer to a request we signed (NOTIFY acks)."""
    try:
        record = find(data)
    except ValueError:
        return False
    if record is None or record.key_name != key.name or record.error != 0:
        return False
    expected = _mac(
        key,
        _prefixed(request_mac),
        unsigned(data, record),
        _variables(key, record.time_signed, record.fudge, record.error, record.other),
    )
    return hmac.compare_digest(expected, record.mac) and abs(now - record.time_signed) <= record.fudge
