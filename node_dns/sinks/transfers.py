"""Zone transfers as a sink of publications: the IXFR journal, NOTIFY, and their metrics.

:func:`build` turns the settings into the three parts the application wires: the transfer gate
the transports consult, the journal fed by every publication, and the NOTIFY sender.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from node_dns import access, tsigkeys
from node_dns.answer import xfr
from node_dns.settings import Settings
from node_dns.sinks import notify
from node_dns.zone import journal as journal_mod
from node_dns.zone import snapshot

log = logging.getLogger("node_dns.transfers")


class TransferConfigError(ValueError):
    """Settings that passed validation but cannot be used (an unreadable key file)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


@dataclass
class Parts:
    gate: xfr.Transfers
    journal: journal_mod.Journal
    notifier: notify.Notifier | None


def load_keys(settings: Settings) -> dict[str, tsigkeys.Key]:
    """Keys from --tsig-key and --tsig-keys-file; a name defined twice is an error."""
    keys = tsigkeys.parse_keys(settings.tsig_key)
    if settings.tsig_keys_file:
        try:
            text = Path(settings.tsig_keys_file).read_text(encoding="utf-8")
        except OSError as error:
            raise TransferConfigError(
                "tsig_keys_file", f"{error.strerror}: {settings.tsig_keys_file}"
            ) from None
        try:
            keys += tsigkeys.parse_bind_keys(text)
        except tsigkeys.KeyError_ as error:
            raise TransferConfigError("tsig_keys_file", str(error)) from None
    found: dict[str, tsigkeys.Key] = {}
    for key in keys:
        if key.name in found:
            raise TransferConfigError("tsig_keys_file", f"key {key.name!r} is also in --tsig-key")
        found[key.name] = key
    return found


def check(settings: Settings) -> dict[str, tsigkeys.Key]:
    """Everything that needs the key file: keys load, and every key named is defined."""
    keys = load_keys(settings)
    for rule in access.parse(settings.transfer_allow):
        if rule.key is not None and rule.key not in keys:
            raise TransferConfigError("transfer_allow", f"key {rule.key!r} is not defined")
    for target in access.parse_targets(settings.notify):
        if target.key is not None and target.key not in keys:
            raise TransferConfigError("notify", f"key {target.key!r} is not defined")
    return keys


def build(settings: Settings, current: Callable[[], snapshot.Snapshot]) -> Parts:
    keys = check(settings)
    rules = access.parse(settings.transfer_allow)
    journal = journal_mod.Journal(settings.ixfr_journal_size, settings.ixfr_journal_bytes)
    options = xfr.Options(
        keys=keys, rules=rules, max_transfers=settings.max_transfers, edns_udp_size=settings.edns_udp_size
    )
    gate = xfr.Transfers(options, current, journal)
    targets = access.parse_targets(settings.notify)
    notifier = notify.Notifier(current().origin, targets, keys) if targets else None
    return Parts(gate, journal, notifier)


def journal_feed(journal: journal_mod.Journal) -> Callable[[snapshot.Snapshot, snapshot.Snapshot], None]:
    """A publication subscriber appending each change to the journal."""
    return journal.record


def families(parts: Parts) -> Iterator[Metric]:
    """Transfers by type and result, bytes, durations; NOTIFY per target; the journal's size."""
    stats = parts.gate.stats
    transfers = CounterMetricFamily(
        "node_dns_transfers", "Zone transfer requests by type and result.", labels=["type", "result"]
    )
    for (kind, result), value in sorted(stats.transfers.items()):
        transfers.add_metric([kind, result], value)
    yield transfers
    sent = CounterMetricFamily(
        "node_dns_transfer_bytes", "Bytes of zone transfers sent, by type.", labels=["type"]
    )
    for kind, value in sorted(stats.bytes.items()):
        sent.add_metric([kind], value)
    yield sent
    seconds = CounterMetricFamily(
        "node_dns_transfer_duration_seconds",
        "Total seconds spent streaming transfers, by type.",
        labels=["type"],
    )
    count = CounterMetricFamily(
        "node_dns_transfers_finished", "Streamed transfers finished, by type.", labels=["type"]
    )
    for kind, (finished, total) in sorted(stats.durations.items()):
        seconds.add_metric([kind], total)
        count.add_metric([kind], finished)
    yield seconds
    yield count
    yield GaugeMetricFamily(
        "node_dns_transfers_active", "Zone transfers streaming now.", value=parts.gate.active
    )
    errors = CounterMetricFamily(
        "node_dns_tsig_errors", "Signed requests refused, by TSIG error.", labels=["error"]
    )
    for name in ("BADKEY", "BADSIG", "BADTIME", "BADTRUNC"):
        errors.add_metric([name], stats.tsig_errors.get(name, 0))
    yield errors
    yield GaugeMetricFamily(
        "node_dns_ixfr_journal_entries", "Zone changes held for IXFR.", value=len(parts.journal)
    )
    yield GaugeMetricFamily(
        "node_dns_ixfr_journal_bytes", "Bytes of records held in the IXFR journal.", value=parts.journal.bytes
    )
    if parts.notifier is None:
        return
    labels = ["target"]
    notify_sent = CounterMetricFamily(
        "node_dns_notify_sent", "NOTIFY messages sent, per target.", labels=labels
    )
    acked = CounterMetricFamily(
        "node_dns_notify_acked", "NOTIFY messages acknowledged, per target.", labels=labels
    )
    failed = CounterMetricFamily(
        "node_dns_notify_failed", "NOTIFY attempts unanswered or answered with an error.", labels=labels
    )
    serial = GaugeMetricFamily(
        "node_dns_notify_acked_serial", "Last serial a target acknowledged (absent before).", labels=labels
    )
    for state in parts.notifier.states:
        target = [str(state.target)]
        notify_sent.add_metric(target, state.sent)
        acked.add_metric(target, state.acked_count)
        failed.add_metric(target, state.failed)
        if state.acked is not None:
            serial.add_metric(target, state.acked)
    yield notify_sent
    yield acked
    yield failed
    yield serial
