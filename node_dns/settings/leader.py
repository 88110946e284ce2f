"""Leader election settings, and client-go's timing rules: the one place they are written.

The election loop (:mod:`node_dns.leader`) checks its configuration with the same
:func:`check_timings`, so a rule and its wording cannot differ between the settings and the loop.
Defaults that depend on where the process runs (the pod's namespace, its name) are not drawn
here: validators do no I/O. :mod:`node_dns.settings.startup` fills them in.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from node_dns import model
from node_dns.settings.group import Group, chart
from node_dns.settings.values import DnsName

JITTER_FACTOR = 1.2
"""client-go's ``JitterFactor``: retries wait retry_period x (1 + rand x 1.2)."""


def check_timings(lease_duration: float, renew_deadline: float, retry_period: float) -> str | None:
    """client-go's NewLeaderElector checks as ``setting: problem``; None when the timings are valid.

    Lease duration > renew deadline > 1.2 x retry period > 0: a leader gives up before its lease
    can expire for the others, and has time for more than one jittered retry before that.
    """
    if retry_period <= 0:
        return "leader_retry_period: must be greater than 0"
    if not renew_deadline < lease_duration:
        return (
            f"leader_renew_deadline: must be less than leader_lease_duration ({lease_duration:g}), "
            f"got {renew_deadline:g}"
        )
    if not renew_deadline > JITTER_FACTOR * retry_period:
        return (
            f"leader_retry_period: must be less than leader_renew_deadline / {JITTER_FACTOR:g} "
            f"({renew_deadline / JITTER_FACTOR:g}; {JITTER_FACTOR:g} is client-go's jitter factor), "
            f"got {retry_period:g}"
        )
    return None


def namespace_name(value: str) -> str:
    """A namespace name is a DNS label."""
    if not model.is_dns_label(value):
        raise ValueError(f"{value!r} is not a valid namespace name (a DNS label)")
    return value


def identity(value: str) -> str:
    """A holder identity: any text of 1 to 253 characters, surrounding space removed."""
    value = value.strip()
    if not value or len(value) > 253:
        raise ValueError("must be 1 to 253 characters")
    return value


class LeaderSettings(Group):
    """Leader election through a Lease: only the leader performs cluster-wide side effects."""

    title = "Leader election"

    leader_elect: bool = Field(
        False,
        description=(
            "Elect a leader through a coordination.k8s.io/v1 Lease; only the leader performs "
            "cluster-wide side effects (Events). Every replica serves DNS either way."
        ),
        json_schema_extra=chart("leaderElection.enabled"),
    )
    leader_lease_name: DnsName = Field(
        "node-dns",
        description="Name of the leader election Lease.",
        json_schema_extra=chart("leaderElection.leaseName"),
    )
    leader_lease_namespace: str | None = Field(
        None,
        description=(
            "Namespace of the Lease. Unset: the pod's namespace (service account mount), else default."
        ),
        json_schema_extra=chart(None),
    )
    leader_identity: str | None = Field(
        None,
        description="This replica's name in the Lease. Unset: $POD_NAME, else <hostname>_<random>.",
        json_schema_extra=chart(None),
    )
    leader_lease_duration: float = Field(
        15.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds a Lease stays valid without renewal; others take over after that.",
        json_schema_extra=chart("leaderElection.leaseDuration"),
    )
    leader_renew_deadline: float = Field(
        10.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description=(
            "Seconds the leader may go without a successful renewal before it stops leading; "
            "must be less than --leader-lease-duration."
        ),
        json_schema_extra=chart("leaderElection.renewDeadline"),
    )
    leader_retry_period: float = Field(
        2.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description=(
            "Seconds between attempts to acquire or renew (jittered up to 2.2x); "
            "--leader-renew-deadline must exceed 1.2x this."
        ),
        json_schema_extra=chart("leaderElection.retryPeriod"),
    )
    leader_record_events: bool | None = Field(
        None,
        description=(
            "The leader records invalid node annotations as Warning Events (namespace default, "
            "needs events: create there). Unset: on with --leader-elect."
        ),
        json_schema_extra=chart("leaderElection.recordEvents"),
    )

    @field_validator("leader_lease_namespace")
    @classmethod
    def _lease_namespace(cls, value: str | None) -> str | None:
        return None if value is None else namespace_name(value)

    @field_validator("leader_identity")
    @classmethod
    def _identity(cls, value: str | None) -> str | None:
        return None if value is None else identity(value)

    @field_validator("leader_record_events")
    @classmethod
    def _record_events(cls, value: bool | None, info: ValidationInfo) -> bool:
        elect = bool(info.data.get("leader_elect"))
        if value and not elect:
            raise ValueError("needs --leader-elect: only an elected leader records events")
        return elect if value is None else value

    @model_validator(mode="after")
    def _timings(self) -> Self:
        problem = check_timings(
            self.leader_lease_duration, self.leader_renew_deadline, self.leader_retry_period
        )
        if problem:
            raise ValueError(problem)
        return self
