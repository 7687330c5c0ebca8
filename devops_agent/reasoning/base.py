"""What every reasoner receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from devops_agent.policy.checks import Tracked
from devops_agent.state import ActionRecord, Alert, Diagnosis, Evidence, Plan, Target


@dataclass
class Investigation:
    """Everything known about an incident when a reasoner is asked about it."""

    alerts: list[Alert]
    target: Target | None
    evidence: list[Evidence]
    actions: list[ActionRecord] = field(default_factory=list)
    attempts: int = 0
    max_replicas: int = 10
    # (category, operation) -> how its fixes did on this service recently (memory.learning).
    history: dict[tuple[str, str], Tracked] = field(default_factory=dict)
    crash_loop_window: float = 300.0  # CRASH_LOOP_WINDOW
    # The run's plan so far (a workflow's next phase follows the one that did not fix it).
    plan: Plan | None = None
    # This run's attempts watched through the settle window (state `tried`).
    tried: list[dict[str, Any]] = field(default_factory=list)
    # Reasoners append one record per call (which reasoner, step, latency, tokens, fallback, error);
    # the nodes put them on the run as `reasoning`.
    calls: list[dict[str, Any]] = field(default_factory=list)

    def find(self, source: str, target: str | None = None) -> Evidence | None:
        """The latest evidence from `source` about `target` (default: the incident's target)."""
        name = target if target is not None else (self.target.name if self.target else "")
        for item in reversed(self.evidence):
            if item.source == source and item.target == name:
                return item
        return None


class Reasoner(Protocol):
    name: str

    async def diagnose(self, case: Investigation) -> Diagnosis: ...

    async def plan(self, case: Investigation, diagnosis: Diagnosis) -> Plan: ...
