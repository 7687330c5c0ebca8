"""The policy: whether a plan may run by itself, needs a person, or must not run.

Data-driven and pure: the verdict depends only on the plan, the registry and the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from devops_agent.config import RISK_ORDER, Settings
from devops_agent.state import Plan
from devops_agent.tools.registry import OPERATIONS

# Operations that always need a person, whatever the other settings say.
ALWAYS_APPROVE = frozenset({"execute_command"})


@dataclass
class Verdict:
    decision: Literal["auto", "approval", "refuse"]
    reasons: list[str] = field(default_factory=list)

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)


def decide(plan: Plan, settings: Settings) -> Verdict:
    """The verdict for a remediation plan."""
    refusals = [
        f"{s.operation} is not an operation of the registry"
        for s in plan.steps
        if s.operation not in OPERATIONS
    ]
    if refusals:
        return Verdict("refuse", refusals)
    mutating = [s for s in plan.steps if OPERATIONS[s.operation].mutating]
    if not mutating:
        return Verdict("auto", ["the plan changes nothing"])
    reasons: list[str] = []
    if settings.safety_mode:
        reasons.append("SAFETY_MODE is on: every mutating operation waits for a person")
    allowed = RISK_ORDER[settings.auto_approve_max_risk]
    for step in mutating:
        risk = OPERATIONS[step.operation].risk
        if RISK_ORDER[risk] > allowed:
            reasons.append(
                f"{step.operation} is {risk} risk, above AUTO_APPROVE_MAX_RISK={settings.auto_approve_max_risk}"
            )
        if step.operation in ALWAYS_APPROVE:
            reasons.append(f"{step.operation} always needs a person")
    if plan.confidence < settings.confidence_threshold:
        reasons.append(
            f"confidence {plan.confidence:.2f} is below CONFIDENCE_THRESHOLD={settings.confidence_threshold:g}"
        )
    if reasons:
        return Verdict("approval", reasons)
    return Verdict("auto", ["within SAFETY_MODE, AUTO_APPROVE_MAX_RISK and CONFIDENCE_THRESHOLD"])
