"""What the parent and a worker say to each other over their pipe: frames and messages (pure).

A frame is a 4-byte big-endian length and a ``marshal`` payload. ``marshal`` carries only plain
values (tuples, dicts, bytes, str, numbers, None), so nothing on the pipe names a class or runs
code when read, and it is the cheapest encoder Python has; both ends are the same interpreter
(the worker is started with the parent's ``sys.executable``), which is what marshal requires.

Parent to worker: ``(CONFIG, WorkerConfig.to_wire())`` once, then ``(ZONE, stream message)``
per publication (:mod:`node_dns.zone.stream`). Worker to parent: ``(WANT_SOCKET,)`` once its
copy of the zone is in place, ``(APPLIED, generation, serial, synced)`` after each zone message,
``(STATS, delta, longest_lag)`` every few seconds (:mod:`.counters`) and ``(RESYNC, why)`` when a
change did not fit its copy.
"""

from __future__ import annotations

import asyncio
import marshal
import struct
from dataclasses import dataclass
from typing import Any

HEADER = struct.Struct("!I")
MAX_FRAME = 1 << 30
"""A frame longer than this is a broken pipe, not a zone: refuse it rather than allocate it."""

CONFIG = "config"
ZONE = "zone"
WANT_SOCKET = "want_socket"
APPLIED = "applied"
STATS = "stats"
RESYNC = "resync"


class WireError(ValueError):
    """Bytes on the pipe that are not a frame this module writes."""


def frame(message: tuple[Any, ...]) -> bytes:
    payload = marshal.dumps(message)
    return HEADER.pack(len(payload)) + payload


def unframe(payload: bytes) -> tuple[Any, ...]:
    """The message of one frame's payload (its length already taken off)."""
    try:
        message = marshal.loads(payload)
    except (EOFError, ValueError, TypeError) as error:
        raise WireError(f"unreadable frame: {error}") from None
    if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
        raise WireError("a frame that is not a tagged tuple")
    return message


def split(buffer: bytes) -> tuple[list[tuple[Any, ...]], bytes]:
    """Every whole frame at the start of ``buffer``, and the bytes left over."""
    messages: list[tuple[Any, ...]] = []
    at = 0
    while len(buffer) - at >= HEADER.size:
        (size,) = HEADER.unpack_from(buffer, at)
        if size > MAX_FRAME:
            raise WireError(f"a frame of {size} bytes")
        end = at + HEADER.size + size
        if end > len(buffer):
            break
        messages.append(unframe(buffer[at + HEADER.size : end]))
        at = end
    return messages, buffer[at:]


async def read(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or None at the end of the stream (the other side is gone)."""
    try:
        header = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(header)
        if size > MAX_FRAME:
            raise WireError(f"a frame of {size} bytes")
        return unframe(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs besides its socket and the zone: the answer path's settings.

    Built by the parent from its settings (and its already loaded TSIG keys), so a worker never
    reads a file or the environment to answer as the parent would.
    """

    index: int
    edns_udp_size: int = 1232
    max_answers: int = 0
    rrl: dict[str, Any] | None = None
    """Keyword arguments of ``ratelimit.RateLimiter`` (None: rate limiting off)."""
    tsig_keys: tuple[tuple[str, str, bytes], ...] = ()
    """(name, algorithm, secret) of every TSIG key, for signed queries over UDP."""
    transfer_allow: str = ""
    transfers: bool = False
    """Whether the transfer gate is on (transfers or TSIG configured)."""
    max_transfers: int = 10
    log_level: str = "info"
    log_json: bool = False
    stats_interval: float = 1.0
    """Seconds between two counter reports to the parent."""
    duration_bounds: tuple[float, ...] = ()
    """Bucket bounds of the request duration histogram (the parent's, so buckets add up)."""
    lag_bounds: tuple[float, ...] = ()
    """Bucket bounds of the event-loop lag histogram."""
    receive_wait_bounds: tuple[float, ...] = ()
    """Bucket bounds of the UDP receive wait histogram (the parent's)."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "edns_udp_size": self.edns_udp_size,
            "max_answers": self.max_answers,
            "rrl": None if self.rrl is None else {k: _plain(v) for k, v in self.rrl.items()},
            "tsig_keys": tuple(self.tsig_keys),
            "transfer_allow": self.transfer_allow,
            "transfers": self.transfers,
            "max_transfers": self.max_transfers,
            "log_level": self.log_level,
            "log_json": self.log_json,
            "stats_interval": self.stats_interval,
            "duration_bounds": tuple(self.duration_bounds),
            "lag_bounds": tuple(self.lag_bounds),
            "receive_wait_bounds": tuple(self.receive_wait_bounds),
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> WorkerConfig:
        try:
            return cls(
                index=int(data["index"]),
                edns_udp_size=int(data["edns_udp_size"]),
                max_answers=int(data["max_answers"]),
                rrl=None if data["rrl"] is None else dict(data["rrl"]),
                tsig_keys=tuple((str(n), str(a), bytes(s)) for n, a, s in data["tsig_keys"]),
                transfer_allow=str(data["transfer_allow"]),
                transfers=bool(data["transfers"]),
                max_transfers=int(data["max_transfers"]),
                log_level=str(data["log_level"]),
                log_json=bool(data["log_json"]),
                stats_interval=float(data["stats_interval"]),
                duration_bounds=tuple(float(b) for b in data["duration_bounds"]),
                lag_bounds=tuple(float(b) for b in data["lag_bounds"]),
                receive_wait_bounds=tuple(float(b) for b in data["receive_wait_bounds"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise WireError(f"unreadable worker configuration: {error}") from None


def _plain(value: Any) -> Any:
    """Lists become tuples so marshal's output compares equal after a round trip."""
    return tuple(value) if isinstance(value, list) else value
