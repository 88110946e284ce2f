"""Parsing of the areas and IPs annotations: skip bad entries, keep the rest.

One bad entry must never cost a node its other entries, nor any other node anything.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from node_dns import model

MAX_ENTRIES = 1024
"""Entries beyond this are ignored: a 256 KiB annotation must not cost seconds of CPU per event."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One skipped entry, reported by the caller (log line + metric)."""

    annotation: str
    entry: str
    reason: str


def _entries(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _shown(entry: str) -> str:
    return entry if len(entry) <= 64 else entry[:61] + "..."


# Both parsers are pure and their inputs repeat: every event of a node carries the same
# annotation values until someone edits them (a Ready flip changes only the status). Caching by
# value saves the parse (IP parsing was ~6% of the CPU per node update at 5,000 nodes). Results
# are immutable; problem lists are copied out, since callers extend them. Long values are not
# cached, so the cache stays small (at most CACHE_SIZE x CACHE_VALUE_LIMIT characters).
CACHE_SIZE = 8192
CACHE_VALUE_LIMIT = 512


def parse_areas(value: str | None, key: str) -> tuple[frozenset[str], list[Problem]]:
    """Comma separated, trimmed, lower-cased; each must be a DNS label."""
    if not value:
        return frozenset(), []
    parse = _parse_areas if len(value) <= CACHE_VALUE_LIMIT else _parse_areas.__wrapped__
    areas, problems = parse(value, key)
    return areas, list(problems)


def parse_ips(value: str | None, key: str) -> tuple[tuple[model.IPAddress, ...], list[Problem]]:
    """Comma separated IPv4/IPv6 addresses; IPv4-mapped IPv6 folds to IPv4; duplicates dropped."""
    if not value:
        return (), []
    parse = _parse_ips if len(value) <= CACHE_VALUE_LIMIT else _parse_ips.__wrapped__
    ips, problems = parse(value, key)
    return ips, list(problems)


def _bounded_entries(value: str, key: str) -> tuple[list[str], list[Problem]]:
    """The entries to read (at most MAX_ENTRIES) and, past that, the one problem saying so."""
    entries = _entries(value)
    if len(entries) <= MAX_ENTRIES:
        return entries, []
    dropped = Problem(key, f"{len(entries)} entries", f"only the first {MAX_ENTRIES} are read")
    return entries[:MAX_ENTRIES], [dropped]


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse_areas(value: str, key: str) -> tuple[frozenset[str], tuple[Problem, ...]]:
    areas: set[str] = set()
    entries, problems = _bounded_entries(value, key)
    for entry in entries:
        area = entry.lower()
        if entry.isascii() and model.is_dns_label(area):  # isascii before lower() folded it
            areas.add(area)
        else:
            problems.append(Problem(key, _shown(entry), "not a DNS label (a-z, 0-9, '-', 1-63 chars)"))
    return frozenset(areas), tuple(problems)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse_ips(value: str, key: str) -> tuple[tuple[model.IPAddress, ...], tuple[Problem, ...]]:
    ips: dict[model.IPAddress, None] = {}
    entries, problems = _bounded_entries(value, key)
    for entry in entries:
        try:
            ip = model.parse_ip(entry)
        except ValueError:
            problems.append(Problem(key, _shown(entry), "not an IPv4 or IPv6 address"))
            continue
        if getattr(ip, "scope_id", None) is not None:
            # fe80::1%eth0 packs to the same 16 bytes as fe80::1: a zone index means nothing in DNS.
            problems.append(Problem(key, _shown(entry), "IPv6 zone index (%...) is not allowed"))
            continue
        if ip.is_unspecified or ip.is_multicast:
            problems.append(Problem(key, _shown(entry), "unspecified or multicast address"))
            continue
        ips[ip] = None
    return tuple(ips), tuple(problems)
