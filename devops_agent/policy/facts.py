"""What the store knows that the policy needs, read in the transaction that decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class TargetFacts:
    """One target, by its identity (`key`: the container or Compose service, never an alert
    label), as the ledger and the incidents show it."""

    key: str
    actions_last_hour: int = 0  # mutating steps begun on it in the last hour, by any run
    breaker: str | None = None  # why its circuit breaker is open
    handled_by: str | None = None  # another open run that is acting on it right now
    remediated_at: datetime | None = None  # when a fix of it (by another run) last held


@dataclass
class PolicyFacts:
    actions_paused: bool = False  # the kill switch
    total_last_hour: int = 0  # mutating steps begun in the last hour, on every target
    targets: dict[str, TargetFacts] = field(default_factory=dict)  # by the step's target name
    run_target_keys: set[str] = field(default_factory=set)  # targets this run has acted on
    run_resolved: bool = False  # every alert of the run was resolved since it started
    # (target, operation) the autonomy ladder promoted for the run's category.
    promoted: set[tuple[str, str]] = field(default_factory=set)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def of(self, name: str) -> TargetFacts:
        return self.targets.get(name) or TargetFacts(key=name)
