"""Rise/fall per target and the self-fault guard: pure state, results in, verdict flips out.

A target is one (address, probe). Its *verdict* is what the zone uses: ``True`` (reachable),
``False`` (not) or ``None`` (never probed). The first result sets the verdict directly, so a new
node is admitted (or kept out) after one probe rather than ``rise`` of them; after that a
verdict flips only after ``fall`` failures or ``rise`` successes in a row, so a target that
flaps faster than that changes nothing. One exception: during the first round after a start,
targets without a verdict are served (see :mod:`.verdicts`), so there a failure removes one only
as it would remove a reachable one -- after ``fall`` failures, and never during a self-fault.

The guard sees every target's latest result. When more than ``share`` of the targets that
count (addresses of healthy nodes) fail at once, the likeliest cause is our own network, not
half the fleet: the guard then holds every flip to down (the last verdicts stay). When the
share drops again, each held target is decided by its next result: still failing, it leaves; passing, it
stays (releasing them all at once would drop every target not yet probed again since the
recovery). Flips to up are never held: probes only ever remove, so letting a node back is safe.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class Result:
    """One probe outcome; ``detail`` says why it failed (or what it saw) in a few words."""

    ok: bool
    detail: str
    latency: float
    at: float


@dataclass(slots=True)
class TargetState:
    """Consecutive counts and the verdict of one target."""

    verdict: bool | None = None
    passes: int = 0
    fails: int = 0
    last: Result | None = None
    changed_at: float | None = None
    held: bool = False
    """A flip to down the guard is holding back."""

    def record(self, result: Result, rise: int, fall: int, patient: bool = False) -> bool | None:
        """Count one result; return the verdict it calls for if that differs from the current one.

        ``patient``: a target without a verdict that is being served anyway (the first round
        after a start) leaves only after ``fall`` failures, like any served target.
        """
        self.last = result
        if result.ok:
            self.passes += 1
            self.fails = 0
        else:
            self.fails += 1
            self.passes = 0
        if self.verdict is None:
            if result.ok or not patient or self.fails >= fall:
                return result.ok
            return None
        if self.verdict and self.fails >= fall:
            return False
        if not self.verdict and self.passes >= rise:
            return True
        return None


@dataclass(frozen=True, slots=True)
class Flip(Generic[K]):
    key: K
    verdict: bool
    previous: bool | None
    detail: str
    at: float


@dataclass(slots=True)
class Guard:
    """Counts failing targets; says when their share means *we* are cut off."""

    share: float = 0.5
    failing: set[object] = field(default_factory=set)
    counted: set[object] = field(default_factory=set)
    """Targets with at least one result that count towards the share."""

    def note(self, key: object, ok: bool, counts: bool) -> None:
        if counts:
            self.counted.add(key)
        else:
            self.counted.discard(key)
        if ok or not counts:
            self.failing.discard(key)
        else:
            self.failing.add(key)

    def forget(self, key: object) -> None:
        self.counted.discard(key)
        self.failing.discard(key)

    @property
    def tripped(self) -> bool:
        return bool(self.counted) and len(self.failing) > self.share * len(self.counted)


class Machine(Generic[K]):
    """Every target's state, the guard, and the flips they produce."""

    def __init__(self, share: float = 0.5) -> None:
        self.states: dict[K, TargetState] = {}
        self.guard = Guard(share)
        self.fault = False
        self.fault_since: float | None = None
        self.faults = 0
        """How many times the guard tripped (a counter for metrics)."""

    def add(self, key: K, verdict: bool | None = None) -> None:
        """Start following a target, optionally from a verdict learnt elsewhere (a previous leader)."""
        if key not in self.states:
            self.states[key] = TargetState(verdict=verdict)

    def remove(self, key: K) -> None:
        self.states.pop(key, None)
        self.guard.forget(key)

    def verdict(self, key: K) -> bool | None:
        state = self.states.get(key)
        return state.verdict if state is not None else None

    def record(
        self, key: K, result: Result, rise: int, fall: int, *, counts: bool = True, patient: bool = False
    ) -> list[Flip[K]]:
        """One result for one target; returns the flip that takes effect now, if any.

        ``patient``: the target has no verdict yet but is served meanwhile (first round after a
        start), so a failure takes it out only as it would a reachable one: after ``fall``
        failures, and not during a self-fault.
        """
        state = self.states.get(key)
        if state is None:
            return []
        wanted = state.record(result, rise, fall, patient)
        self.guard.note(key, result.ok, counts)
        flips: list[Flip[K]] = []
        self._update_fault(result.at, flips)
        if wanted is None:
            if state.held and result.ok:
                state.held = False  # came back before the fault ended: nothing to release
            return flips
        if wanted is False and (state.verdict is not None or patient) and self.fault:
            state.held = True
            return flips
        state.held = False
        flips.append(self._flip(key, state, wanted, result.at))
        return flips

    def _flip(self, key: K, state: TargetState, verdict: bool, at: float) -> Flip[K]:
        previous = state.verdict
        state.verdict = verdict
        state.changed_at = at
        detail = state.last.detail if state.last is not None else ""
        return Flip(key, verdict, previous, detail, at)

    def _update_fault(self, now: float, flips: list[Flip[K]]) -> None:
        tripped = self.guard.tripped
        if tripped and not self.fault:
            self.fault = True
            self.fault_since = now
            self.faults += 1
        elif not tripped and self.fault:
            # Held targets are not released here: many of them still show the failure from
            # before our network came back. Each one's next result decides (it fails: it
            # leaves; it passes: it stays).
            self.fault = False
            self.fault_since = None

    def counts(self) -> tuple[int, int]:
        """(failing, counted) targets as the guard sees them."""
        return len(self.guard.failing), len(self.guard.counted)

    def seed(self, verdicts: Iterable[tuple[K, bool]]) -> None:
        """Take over verdicts published by an earlier leader, so a new leader flips nothing that
        did not change."""
        for key, verdict in verdicts:
            state = self.states.get(key)
            if state is not None and state.verdict is None:
                state.verdict = verdict
