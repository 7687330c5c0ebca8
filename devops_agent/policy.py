"""The policy: whether a plan may run by itself, needs a person, or must not run.

Data-driven and pure: a verdict depends only on the plan, the settings, the policy document
(POLICY_FILE: rules, maintenance windows, silenced services) and the facts the caller read from
the store (recent actions, open circuit breakers, the kill switch). Refusals and reasons are
plain sentences, recorded on the run and in the audit trail.

A POLICY_FILE (YAML or JSON) looks like this:

    rules:                       # first match wins; fnmatch patterns
      - {operation: restart_service, target: "db-*", verdict: approval}
      - {operation: execute_command, target: "*", verdict: forbid}
    maintenance_windows:         # mutating actions on these services wait for a person
      - {services: [checkout], start: "2026-11-24T22:00:00Z", end: "2026-11-25T02:00:00Z"}
    silenced: [legacy-batch]     # never acted on
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from devops_agent.config import RISK_ORDER, Settings, SettingsError
from devops_agent.state import Plan, PlanStep
from devops_agent.tools.registry import OPERATIONS

# Operations that always need a person, whatever the other settings say.
ALWAYS_APPROVE = frozenset({"execute_command"})


class Rule(BaseModel):
    operation: str = "*"
    target: str = "*"
    verdict: Literal["auto", "approval", "forbid"]


class MaintenanceWindow(BaseModel):
    services: list[str] = Field(min_length=1)
    start: datetime
    end: datetime

    def covers(self, service: str, now: datetime) -> bool:
        return self.start <= now < self.end and any(fnmatchcase(service, p) for p in self.services)


class PolicyDocument(BaseModel):
    rules: list[Rule] = Field(default_factory=list)
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    silenced: list[str] = Field(default_factory=list)

    @property
    def digest(self) -> str:
        """A short hash of the document, recorded with each verdict."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def rule_for(self, step: PlanStep) -> Rule | None:
        for rule in self.rules:
            if fnmatchcase(step.operation, rule.operation) and fnmatchcase(
                step.target, rule.target
            ):
                return rule
        return None


def load_policy(path: Path | None) -> PolicyDocument:
    """The POLICY_FILE, validated; a bad file is a SettingsError with one clear line."""
    if path is None:
        return PolicyDocument()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return PolicyDocument.model_validate(raw)
    except OSError as exc:
        raise SettingsError(
            f"invalid setting POLICY_FILE: cannot read {path}: {exc.strerror}"
        ) from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"invalid setting POLICY_FILE: {path} is not YAML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SettingsError(f"invalid setting POLICY_FILE: {path}: {where}: {err['msg']}") from None


@dataclass
class Facts:
    """What the store knows that the policy needs; read by the node just before deciding."""

    actions_paused: bool = False
    actions_last_hour: dict[str, int] = field(default_factory=dict)  # service -> mutating actions
    total_last_hour: int = 0  # mutating actions on every service
    breaker_open: dict[str, str] = field(default_factory=dict)  # service -> why
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Verdict:
    decision: Literal["auto", "approval", "refuse"]
    reasons: list[str] = field(default_factory=list)
    policy: str = ""

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)


def refusals(
    steps: list[PlanStep],
    settings: Settings,
    document: PolicyDocument,
    facts: Facts,
    undo: bool = False,
) -> list[str]:
    """Why these steps must not run at all (empty: they may, with or without a person).

    An `undo` (a rollback to the state before the agent acted) is not held back by the rate
    limits or the circuit breaker, which exist to limit the agent's own changes; forbid rules
    and silences still apply.
    """
    found: list[str] = []
    unknown = [s.operation for s in steps if s.operation not in OPERATIONS]
    if unknown:
        return [f"{op} is not an operation of the registry" for op in unknown]
    mutating = [s for s in steps if OPERATIONS[s.operation].mutating]
    targets = {s.target for s in mutating}
    if len(targets) > settings.max_targets_per_run:
        found.append(
            f"the plan acts on {len(targets)} services, more than MAX_TARGETS_PER_RUN="
            f"{settings.max_targets_per_run}"
        )
    planned: dict[str, int] = {}
    for step in mutating:
        planned[step.target] = planned.get(step.target, 0) + 1
        rule = document.rule_for(step)
        if rule and rule.verdict == "forbid":
            found.append(f"{step.operation} on {step.target} is forbidden by the policy file")
        if any(fnmatchcase(step.target, p) for p in document.silenced):
            found.append(f"{step.target} is silenced: the agent does not act on it")
        if step.target in facts.breaker_open and not undo:
            found.append(
                f"circuit breaker open for {step.target}: {facts.breaker_open[step.target]}"
            )
        recent = facts.actions_last_hour.get(step.target, 0) + planned[step.target]
        if recent > settings.max_actions_per_service_per_hour and not undo:
            found.append(
                f"{step.target} would get {recent} mutating actions in an hour, more than "
                f"MAX_ACTIONS_PER_SERVICE_PER_HOUR={settings.max_actions_per_service_per_hour}"
            )
        if step.operation == "scale_service":
            replicas = int(step.params.get("replicas", 0))
            if replicas > settings.max_replicas:
                found.append(f"{replicas} replicas exceeds MAX_REPLICAS={settings.max_replicas}")
    if (
        not undo
        and mutating
        and facts.total_last_hour + len(mutating) > settings.max_actions_per_hour
    ):
        found.append(
            f"{facts.total_last_hour + len(mutating)} mutating actions in an hour would exceed "
            f"MAX_ACTIONS_PER_HOUR={settings.max_actions_per_hour}"
        )
    return list(dict.fromkeys(found))


def decide(
    plan: Plan,
    settings: Settings,
    document: PolicyDocument | None = None,
    facts: Facts | None = None,
) -> Verdict:
    """The verdict for a remediation plan."""
    document = document or PolicyDocument()
    facts = facts or Facts()
    name = f"policy {document.digest}"
    refused = refusals(plan.steps, settings, document, facts)
    if refused:
        return Verdict("refuse", refused, name)
    mutating = [s for s in plan.steps if OPERATIONS[s.operation].mutating]
    if not mutating:
        return Verdict("auto", ["the plan changes nothing"], name)
    reasons: list[str] = []
    if settings.safety_mode:
        reasons.append("SAFETY_MODE is on: every mutating operation waits for a person")
    if facts.actions_paused:
        reasons.append("actions are paused (kill switch): every mutating step waits for a person")
    allowed = RISK_ORDER[settings.auto_approve_max_risk]
    for step in mutating:
        risk = OPERATIONS[step.operation].risk
        if RISK_ORDER[risk] > allowed:
            reasons.append(
                f"{step.operation} is {risk} risk, above AUTO_APPROVE_MAX_RISK="
                f"{settings.auto_approve_max_risk}"
            )
        if step.operation in ALWAYS_APPROVE:
            reasons.append(f"{step.operation} always needs a person")
        rule = document.rule_for(step)
        if rule and rule.verdict == "approval":
            reasons.append(
                f"the policy file asks for approval of {step.operation} on {step.target}"
            )
        if any(w.covers(step.target, facts.now) for w in document.maintenance_windows):
            reasons.append(f"{step.target} is in a maintenance window")
    if plan.confidence < settings.confidence_threshold:
        reasons.append(
            f"confidence {plan.confidence:.2f} is below CONFIDENCE_THRESHOLD="
            f"{settings.confidence_threshold:g}"
        )
    if reasons:
        return Verdict("approval", list(dict.fromkeys(reasons)), name)
    return Verdict(
        "auto", ["within SAFETY_MODE, AUTO_APPROVE_MAX_RISK and CONFIDENCE_THRESHOLD"], name
    )
