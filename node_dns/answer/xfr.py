"""The transfer gate: AXFR, IXFR and TSIG-signed queries, before the ordinary query path.

The transports hand a message here when :meth:`Transfers.claims` says so (a transfer type, or a
TSIG record); everything else goes to the responder untouched, so the hot path pays nothing.
Order of checks, per RFC 8945 §5.2 and RFC 5936 §6: TSIG (key, signature, time), then the
``--transfer-allow`` rules, then the transfer itself. A refused or failed request never gets a
single record of zone data. Problems are counted and logged once per client and kind.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from node_dns import access, tsigkeys
from node_dns.answer import query, responder, transfer, tsig, walk
from node_dns.protocol import TYPE_AXFR, TYPE_IXFR, Opcode, Rcode, opcode
from node_dns.zone import journal as journal_mod
from node_dns.zone import snapshot
from node_dns.zone.serial import serial_newer

log = logging.getLogger("node_dns.transfers")

TRANSFER_TYPES = (TYPE_IXFR, TYPE_AXFR)
_LOGGED_MAX = 10_000
_KIND_TEXT = {"axfr": "AXFR", "ixfr": "IXFR (incremental)", "ixfr_full": "IXFR (whole zone)"}


@dataclass
class Stats:
    """Plain counters read by the metrics collector at scrape time."""

    transfers: dict[tuple[str, str], int] = field(default_factory=dict)
    """(type: axfr | ixfr | ixfr_full | ixfr_udp, result: ok | refused | tsig_error | ...) -> count."""
    bytes: dict[str, int] = field(default_factory=dict)
    durations: dict[str, tuple[int, float]] = field(default_factory=dict)
    """type -> (count, total seconds) of finished transfers."""
    tsig_errors: dict[str, int] = field(default_factory=dict)
    signed_queries: int = 0

    def count(self, kind: str, result: str) -> None:
        key = (kind, result)
        self.transfers[key] = self.transfers.get(key, 0) + 1


@dataclass
class Reply:
    """What the transport sends: one message, or the messages of a transfer, lazily."""

    messages: Iterator[bytes]
    kind: str
    """``axfr``, ``ixfr``, ``ixfr_full`` (whole zone in IXFR form), or ``query`` / ``error``."""
    streamed: bool = False
    """True for a transfer that holds a slot until :meth:`Transfers.finished` is called."""
    client: str | None = None
    started: float = 0.0
    key: str | None = None
    serials: tuple[int | None, int] = (None, 0)
    """(the client's serial for IXFR, the serial sent)."""


@dataclass(frozen=True, slots=True)
class _Request:
    """What every answer to one request needs: the query, its signer, the time, who asked."""

    parsed: query.Query
    signer: tsig.Stream | None
    now: int
    client: str | None
    key: str | None


@dataclass(frozen=True, slots=True)
class Options:
    keys: dict[str, tsigkeys.Key]
    rules: tuple[access.Rule, ...]
    max_transfers: int = 10
    edns_udp_size: int = 1232


class Transfers:
    def __init__(
        self,
        options: Options,
        current: Callable[[], snapshot.Snapshot],
        journal: journal_mod.Journal,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self._current = current
        self.journal = journal
        self._clock = clock
        self._cache = transfer.AxfrCache()
        self.active = 0
        self.stats = Stats()
        self._logged: set[tuple[str, str]] = set()

    # --- routing -------------------------------------------------------------------------------
    @staticmethod
    def claims(data: bytes) -> bool:
        """Is this a transfer request or a signed message? Cheap: header and question only."""
        size = len(data)
        if size < 17:
            return False
        i = 12
        while i < size:
            length = data[i]
            if length == 0:
                break
            if length > 63:
                return True  # odd shape: let the gate's parser decide
            i += length + 1
        if i + 5 > size:
            return False
        qtype = (data[i + 1] << 8) | data[i + 2]
        if qtype in TRANSFER_TYPES:
            return True
        arcount = (data[10] << 8) | data[11]
        if arcount == 0:
            return False
        if arcount == 1 and data[4:10] == b"\x00\x01\x00\x00\x00\x00" and i + 8 <= size:
            return not (data[i + 5] == 0 and data[i + 6] == 0 and data[i + 7] == 41)  # lone OPT
        return True

    def finished(self, reply: Reply, sent_bytes: int, ok: bool) -> None:
        """The transport is done with a streamed transfer: free its slot and record it."""
        self.active = max(0, self.active - 1)
        self.stats.count(reply.kind, "ok" if ok else "aborted")
        self.stats.bytes[reply.kind] = self.stats.bytes.get(reply.kind, 0) + sent_bytes
        count, total = self.stats.durations.get(reply.kind, (0, 0.0))
        seconds = max(0.0, self._clock() - reply.started)
        self.stats.durations[reply.kind] = (count + 1, total + seconds)
        old, new = reply.serials
        log.info(
            "%s to %s (key %s), serial %s%d: %s, %d bytes in %.3fs",
            _KIND_TEXT.get(reply.kind, reply.kind),
            reply.client,
            reply.key or "none",
            f"{old} -> " if old is not None else "",
            new,
            "done" if ok else "aborted (client gone or too slow)",
            sent_bytes,
            seconds,
        )

    # --- the gate --------------------------------------------------------------------------------
    def handle(self, data: bytes, client: str | None, *, tcp: bool) -> Reply | None:
        """Answer a claimed message; None means drop it (not a query)."""
        parsed = query.decode(data)
        if parsed is None:
            return None
        now = int(self._clock())
        signer: tsig.Stream | None = None
        try:
            record = tsig.find(data)
        except ValueError:
            return self._error(parsed, Rcode.FORMERR)
        key_name: str | None = None
        if record is not None:
            verdict = tsig.verify(data, record, self.options.keys, now)
            if verdict.error != tsig.TsigError.NOERROR:
                return self._tsig_failure(parsed, verdict, client, now)
            assert verdict.key is not None
            key_name = verdict.key.name
            signer = tsig.Stream(verdict.key, verdict.request_mac)
            data = tsig.unsigned(data, record)
            parsed = query.decode(data)
            if parsed is None:
                return None
        if (
            parsed.qtype not in TRANSFER_TYPES
            or parsed.problem is not None
            or opcode(parsed.flags) != Opcode.QUERY
        ):
            return self._signed_query(data, _Request(parsed, signer, now, client, key_name), tcp=tcp)
        kind = "axfr" if parsed.qtype == TYPE_AXFR else "ixfr"
        snap = self._current()
        request = _Request(parsed, signer, now, client, key_name)
        if not access.allowed(self.options.rules, client, key_name):
            self.stats.count(kind, "refused")
            self._log_once(
                client,
                "refused",
                "transfer refused to %s (key %s): no --transfer-allow entry matches",
                client,
                key_name or "none",
            )
            return self._one(request, Rcode.REFUSED)
        if tuple(label.lower() for label in parsed.labels) != snap.origin or parsed.qclass != 1:
            self.stats.count(kind, "refused")
            return self._one(request, Rcode.REFUSED)
        if not snap.synced:
            self.stats.count(kind, "not_ready")
            return self._one(request, Rcode.SERVFAIL)
        if kind == "axfr":
            if not tcp:
                self.stats.count("axfr", "udp_refused")
                return self._one(request, Rcode.REFUSED)
            return self._stream(request, "axfr", self._cache.bodies(snap), (None, snap.serial))
        return self._ixfr(data, request, snap, tcp=tcp)

    def _ixfr(self, data: bytes, request: _Request, snap: snapshot.Snapshot, *, tcp: bool) -> Reply:
        parsed = request.parsed
        client_serial = _ixfr_serial(data)
        if client_serial is None:
            self.stats.count("ixfr", "formerr")
            return self._one(request, Rcode.FORMERR)
        if client_serial == snap.serial:  # the client is current: the SOA alone
            self.stats.count("ixfr_udp" if not tcp else "ixfr", "current")
            body = transfer.pack([(snap.origin, transfer.soa_tail(snap))], snap.origin)
            wires = transfer.messages(parsed.id, parsed.flags, parsed.question, body)
            return self._finish(wires, request, "ixfr")
        if not tcp:
            self.stats.count("ixfr_udp", "truncated")
            wire = transfer.single(parsed.id, parsed.flags, parsed.question, 0, tc=True)
            return self._finish(iter([wire]), request, "ixfr_udp")
        serials = (client_serial, snap.serial)
        # a serial from the future (a secondary that knew another primary) is outside the journal
        delta = self.journal.since(client_serial) if serial_newer(snap.serial, client_serial) else None
        if delta is None:
            return self._stream(request, "ixfr_full", self._cache.bodies(snap), serials)
        bodies = transfer.pack(transfer.delta_records(snap, client_serial, delta), snap.origin)
        return self._stream(request, "ixfr", bodies, serials)

    def _stream(
        self, request: _Request, kind: str, bodies: list[transfer.Body], serials: tuple[int | None, int]
    ) -> Reply:
        parsed, signer, client = request.parsed, request.signer, request.client
        if self.active >= self.options.max_transfers:
            self.stats.count(kind, "too_many")
            self._log_once(
                client,
                "too_many",
                "transfer to %s refused: %d transfers running (--max-transfers)",
                client,
                self.active,
            )
            return self._one(request, Rcode.REFUSED)
        self.active += 1
        wires = transfer.messages(parsed.id, parsed.flags, parsed.question, bodies)
        clock = self._clock

        def signed() -> Iterator[bytes]:
            for wire in wires:
                yield wire if signer is None else signer.sign(wire, int(clock()))

        return Reply(
            signed(), kind, streamed=True, client=client, started=clock(), key=request.key, serials=serials
        )

    def _finish(self, wires: Iterator[bytes], request: _Request, kind: str) -> Reply:
        signer = request.signer
        if signer is None:
            return Reply(wires, kind)
        return Reply(iter([signer.sign(wire, request.now) for wire in wires]), kind)

    def _one(self, request: _Request, rcode: int) -> Reply:
        parsed = request.parsed
        wire = transfer.single(parsed.id, parsed.flags, parsed.question, rcode)
        return self._finish(iter([wire]), request, "error")

    def _error(self, parsed: query.Query, rcode: int) -> Reply:
        return Reply(iter([transfer.single(parsed.id, parsed.flags, parsed.question, rcode)]), "error")

    def _signed_query(self, data: bytes, request: _Request, *, tcp: bool) -> Reply | None:
        """An ordinary query (SOA, before a transfer): the usual answer, signed if it was."""
        answered = responder.answer(data, self._current(), tcp=tcp, edns_udp_size=self.options.edns_udp_size)
        if answered is None:
            return None
        if request.signer is not None:
            self.stats.signed_queries += 1
        return self._finish(iter([answered[0]]), request, "query")

    def _tsig_failure(
        self, parsed: query.Query, verdict: tsig.Verdict, client: str | None, now: int
    ) -> Reply:
        name = verdict.error.name
        self.stats.tsig_errors[name] = self.stats.tsig_errors.get(name, 0) + 1
        kind = {TYPE_AXFR: "axfr", TYPE_IXFR: "ixfr"}.get(parsed.qtype)
        if kind is not None:
            self.stats.count(kind, "tsig_error")
        self._log_once(
            client,
            name,
            "TSIG %s from %s (key %s, algorithm %s): answered NOTAUTH with no data",
            name,
            client,
            verdict.record.key_name,
            verdict.record.algorithm,
        )
        message = transfer.single(parsed.id, parsed.flags, parsed.question, Rcode.NOTAUTH)
        if verdict.error == tsig.TsigError.BADTIME and verdict.key is not None:
            wire, _ = tsig.sign(
                message,
                verdict.key,
                verdict.record.time_signed,
                request_mac=verdict.request_mac,
                error=int(tsig.TsigError.BADTIME),
                other=struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF),
                fudge=verdict.record.fudge,
            )
        else:
            wire = tsig.unsigned_error(message, verdict.record, verdict.error)
        return Reply(iter([wire]), "error")

    def _log_once(self, client: str | None, what: str, message: str, *args: object) -> None:
        key = (client or "?", what)
        if key in self._logged:
            return
        if len(self._logged) >= _LOGGED_MAX:
            self._logged.clear()
        self._logged.add(key)
        log.warning(message + " (logged once per client)", *args)


def _ixfr_serial(data: bytes) -> int | None:
    """The serial of the SOA a client sends in the authority section of its IXFR request."""
    try:
        qd, an, ns, _ = walk.counts(data)
        if qd != 1 or ns < 1:
            return None
        found = list(walk.records(data, walk.question_end(data, qd), an + 1))[-1]
        at = walk.soa_serial_at(data, found)
    except walk.Malformed:
        return None
    return int.from_bytes(data[at : at + 4], "big")
