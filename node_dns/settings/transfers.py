"""Zone transfer settings: TSIG keys, who may transfer, whom to NOTIFY, journal and limits."""

from __future__ import annotations

from pydantic import Field, field_validator

from node_dns import access, tsigkeys
from node_dns.settings.group import Group, chart


class TransferSettings(Group):
    """Zone transfers (AXFR/IXFR) to secondaries, NOTIFY and TSIG: node-dns as a hidden primary."""

    title = "Zone transfers"

    tsig_key: str = Field(
        "",
        json_schema_extra=chart(None),  # from an existing Secret: transfers.tsig.keyKey
        description=(
            "TSIG keys as '[algorithm:]name:base64-secret' (kdig's -y form; hmac-sha256 when the "
            "algorithm is left out), several separated by ';'."
        ),
    )
    tsig_keys_file: str | None = Field(
        None,
        json_schema_extra=chart(None),  # a Secret mounted: transfers.tsig.keysFileKey
        description=(
            'A file of BIND \'key "name" { algorithm ...; secret "..."; };\' clauses (as '
            "tsig-keygen writes; e.g. a mounted Secret). Read at start."
        ),
    )
    transfer_allow: str = Field(
        "",
        json_schema_extra=chart("transfers.allow"),
        description=(
            "Who may transfer the zone: entries separated by ';', each a client prefix "
            "(10.0.0.0/8), key=NAME, or PREFIX+key=NAME (both). Empty: nobody."
        ),
    )
    notify: str = Field(
        "",
        json_schema_extra=chart("transfers.notify"),
        description=(
            "Secondaries to NOTIFY when the serial moves: 'host[:port][+key=NAME]' separated by ',' "
            "(IPv6 in brackets). With --leader-elect only the leader sends."
        ),
    )
    ixfr_journal_size: int = Field(
        100,
        ge=0,
        le=100_000,
        description="Zone changes kept for IXFR (0: always a full transfer).",
        json_schema_extra=chart("transfers.ixfrJournalSize"),
    )
    ixfr_journal_bytes: int = Field(
        16 * 1024 * 1024,
        ge=0,
        le=2**31,
        description="Bytes of records the IXFR journal may hold; older changes are dropped first.",
        json_schema_extra=chart("transfers.ixfrJournalBytes"),
    )
    max_transfers: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Zone transfers streamed at once; more are refused (REFUSED).",
        json_schema_extra=chart("transfers.maxTransfers"),
    )

    @field_validator("tsig_key")
    @classmethod
    def _keys(cls, value: str) -> str:
        try:
            tsigkeys.parse_keys(value)
        except tsigkeys.KeyError_ as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("transfer_allow")
    @classmethod
    def _rules(cls, value: str) -> str:
        try:
            access.parse(value)
        except access.RuleError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("notify")
    @classmethod
    def _targets(cls, value: str) -> str:
        try:
            access.parse_targets(value)
        except access.RuleError as error:
            raise ValueError(str(error)) from None
        return value

    @property
    def transfers_enabled(self) -> bool:
        """Anything to do: someone may transfer, or someone is to be notified, or keys sign queries."""
        return bool(
            self.transfer_allow.strip() or self.notify.strip() or self.tsig_key or self.tsig_keys_file
        )
