"""Types of the compiled UDP batch (node_dns/transports/_fastudp.c)."""

from collections.abc import Callable

from node_dns.answer.stats import Histogram

ABI: int
SOURCE_DIGEST: str
BATCH: int
SEND_SLOT: int
TRANSFER_TYPES: tuple[int, int]

def cache_key(data: bytes, /) -> tuple[bytes, int] | None: ...
def answer(cache: dict[bytes, object], data: bytes, gated: bool, /) -> bytes | None: ...
def queue_wait(now: int, stamp: int, /) -> float: ...

class Batch:
    def __init__(
        self,
        fd: int,
        responder: object,
        histogram: Histogram,
        miss: Callable[[bytes, int], bytes | bool | None],
        drop: Callable[[str], None],
        gated: bool,
        waits: Histogram,
    ) -> None: ...
    def readable(self) -> None: ...
    def sender(self, slot: int, /) -> bytes: ...
    def close(self) -> None: ...
