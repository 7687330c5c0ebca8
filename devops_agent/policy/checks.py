"""May this step run: by itself, with a person, or not at all. The one home of every refusal.

Pure functions of the steps, the settings, the policy file and the facts read from the store.
`decide` judges a whole plan when it is made (approve); `judge_step` judges one step again in
the transaction that records it in the ledger (execute), against facts read in that same
transaction, so two runs can never both pass a limit that only one of them may use. The
primitive checks (operation, command, scale) are also what the backends and the validation of
LLM answers call, so each rule is written once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from devops_agent.config import Settings
from devops_agent.operations import OPERATIONS, RISK_ORDER
from devops_agent.policy.document import PolicyDocument
from devops_agent.policy.facts import PolicyFacts
from devops_agent.policy.reasons import Finding, messages
from devops_agent.state import Plan, PlanStep

ALWAYS_APPROVE = frozenset({"execute_command"})  # a person decides these, whatever the settings


@dataclass
class Verdict:
    """The policy's answer for a plan: run by itself, ask a person, or refuse."""

    decision: Literal["auto", "approval", "refuse"]
    findings: list[Finding] = field(default_factory=list)
    policy: str = ""

    @property
    def why(self) -> str:
        return messages(self.findings)

    @property
    def reason(self) -> str | None:
        return self.findings[0].code if self.findings else None


@dataclass
class StepVerdict:
    """The answer for one step at the moment it would run."""

    kind: Literal["run", "ask", "refuse", "join", "stop"]
    findings: list[Finding] = field(default_factory=list)
    handled_by: str | None = None  # join: the run that is acting on the target
    note: str = ""  # stop: why the run has nothing left to do

    @property
    def why(self) -> str:
        return messages(self.findings)

    @property
    def reason(self) -> str | None:
        return self.findings[0].code if self.findings else None


# -- primitive checks (also called by the backends and the validation of LLM answers) ---------


def operation_finding(operation: str) -> Finding | None:
    if operation in OPERATIONS:
        return None
    return Finding("policy_forbid", f"{operation} is not an operation of the registry")


def command_finding(argv: Sequence[str], allowlist: Sequence[Sequence[str]]) -> Finding | None:
    """execute_command runs only an argv that starts with an EXECUTE_COMMAND_ALLOWLIST prefix."""
    if any(prefix and list(argv[: len(prefix)]) == list(prefix) for prefix in allowlist):
        return None
    return Finding(
        "not_allowlisted", f"argv {list(argv)[:4]!r} matches no prefix of EXECUTE_COMMAND_ALLOWLIST"
    )


def scale_findings(
    replicas: int, before: int | None, max_replicas: int, max_step: int | None
) -> list[Finding]:
    """A scale to `replicas` from `before`: never to 0, at most MAX_REPLICAS, at most
    MAX_SCALE_STEP at once."""
    found: list[Finding] = []
    if replicas < 1:
        found.append(Finding("policy_forbid", "the agent never scales a service to 0 replicas"))
    if replicas > max_replicas:
        found.append(
            Finding("max_replicas", f"{replicas} replicas exceeds MAX_REPLICAS={max_replicas}")
        )
    if before is not None and max_step is not None and abs(replicas - before) > max_step:
        found.append(
            Finding(
                "max_scale_step",
                f"scaling by {abs(replicas - before)} exceeds MAX_SCALE_STEP={max_step}",
            )
        )
    return found


class Tracked(Protocol):
    """How an operation did against a fault on a service recently (memory.learning.Track)."""

    held: int
    failed: int
    last_held: bool | None
    last_held_at: datetime | None

    def cite(self, operation: str) -> str: ...


def ineffective(
    history: Mapping[tuple[str, str], Tracked], category: str, operation: str
) -> Finding | None:
    """An operation whose latest try against this fault on this service did not hold: it is
    not planned again by itself."""
    track = history.get((category, operation))
    if track is not None and track.last_held is False:
        return Finding(
            "ineffective_chain",
            f"{operation} did not hold the last time it was tried for {category} "
            f"({track.cite(operation)}): not repeated by itself",
        )
    return None


def did_not_hold(step: PlanStep, tried: Sequence[Mapping[str, object]]) -> Finding | None:
    """A step this run already took in an attempt whose fix did not hold: not taken again."""
    for attempt in tried:
        if attempt.get("held") is False and [step.operation, step.target] in list(
            attempt.get("operations") or []  # type: ignore[call-overload]
        ):
            return Finding(
                "did_not_hold",
                f"{step.operation} on {step.target} did not hold in attempt "
                f"{attempt.get('attempt')} ({attempt.get('why')}): not repeated",
            )
    return None


def _step_params_findings(
    step: PlanStep, settings: Settings, replicas_before: Mapping[str, int]
) -> list[Finding]:
    if step.operation == "scale_service":
        return scale_findings(
            int(step.params.get("replicas", 0)),
            replicas_before.get(step.target),
            settings.max_replicas,
            settings.max_scale_step,
        )
    if step.operation == "execute_command":
        found = command_finding(step.params.get("argv") or [], settings.command_allowlist)
        return [found] if found else []
    return []


# -- refusals and reasons to ask --------------------------------------------------------------


def refusals(
    steps: Sequence[PlanStep],
    settings: Settings,
    document: PolicyDocument,
    facts: PolicyFacts,
    *,
    undo: bool = False,
    replicas_before: Mapping[str, int] | None = None,
) -> list[Finding]:
    """Why these steps must not run at all (empty: they may, with or without a person).

    The counts in `facts` include every step already begun (this run's too); each step here is
    counted on top. An `undo` (a rollback to the state before the agent acted) is not held back
    by the rate limits or the circuit breaker, which limit the agent's own changes; forbid rules
    and silences still apply.
    """
    before = replicas_before or {}
    unknown = [f for f in (operation_finding(s.operation) for s in steps) if f]
    if unknown:
        return unknown
    found: list[Finding] = []
    mutating = [s for s in steps if OPERATIONS[s.operation].mutating]
    keys = set(facts.run_target_keys) | {facts.of(s.target).key for s in mutating}
    if len(keys) > settings.max_targets_per_run:
        found.append(
            Finding(
                "max_targets",
                f"the run would act on {len(keys)} services, more than MAX_TARGETS_PER_RUN="
                f"{settings.max_targets_per_run}",
            )
        )
    planned: dict[str, int] = {}
    for step in mutating:
        target = facts.of(step.target)
        planned[target.key] = planned.get(target.key, 0) + 1
        if "forbid" in document.verdicts_for(step):
            found.append(
                Finding(
                    "policy_forbid",
                    f"{step.operation} on {step.target} is forbidden by the policy file",
                )
            )
        if document.silences(step.target):
            found.append(
                Finding("silenced", f"{step.target} is silenced: the agent does not act on it")
            )
        found += _step_params_findings(step, settings, before)
        if undo:
            continue
        if target.breaker:
            found.append(
                Finding("breaker_open", f"circuit breaker open for {step.target}: {target.breaker}")
            )
        recent = target.actions_last_hour + planned[target.key]
        if recent > settings.max_actions_per_service_per_hour:
            found.append(
                Finding(
                    "rate_limit_service",
                    f"{step.target} would get {recent} mutating actions in an hour, more than "
                    f"MAX_ACTIONS_PER_SERVICE_PER_HOUR={settings.max_actions_per_service_per_hour}",
                )
            )
    total = facts.total_last_hour + len(mutating)
    if not undo and mutating and total > settings.max_actions_per_hour:
        found.append(
            Finding(
                "rate_limit_global",
                f"{total} mutating actions in an hour would exceed MAX_ACTIONS_PER_HOUR="
                f"{settings.max_actions_per_hour}",
            )
        )
    return list(dict.fromkeys(found))


LADDER_MAX_RISK = "medium"


def promoted(step: PlanStep, settings: Settings, facts: PolicyFacts) -> bool:
    """The autonomy ladder lets this step run by itself above AUTO_APPROVE_MAX_RISK: promoted
    for its pattern, SAFETY_MODE off, at most medium risk, never execute_command."""
    return (
        settings.autonomy_ladder
        and not settings.safety_mode
        and (step.target, step.operation) in facts.promoted
        and RISK_ORDER[OPERATIONS[step.operation].risk] <= RISK_ORDER[LADDER_MAX_RISK]
        and step.operation not in ALWAYS_APPROVE
    )


def asks(
    steps: Sequence[PlanStep],
    settings: Settings,
    document: PolicyDocument,
    facts: PolicyFacts,
) -> list[Finding]:
    """Why a person must decide these steps (empty: the policy lets them run by itself)."""
    mutating = [s for s in steps if OPERATIONS[s.operation].mutating]
    if not mutating:
        return []
    found: list[Finding] = []
    if settings.safety_mode:
        found.append(
            Finding("safety_mode", "SAFETY_MODE is on: every mutating operation waits for a person")
        )
    if facts.actions_paused:
        found.append(
            Finding(
                "kill_switch",
                "actions are paused (kill switch): every mutating step waits for a person",
            )
        )
    allowed = RISK_ORDER[settings.auto_approve_max_risk]
    for step in mutating:
        risk = OPERATIONS[step.operation].risk
        if RISK_ORDER[risk] > allowed and not promoted(step, settings, facts):
            found.append(
                Finding(
                    "risk_above_auto",
                    f"{step.operation} is {risk} risk, above AUTO_APPROVE_MAX_RISK="
                    f"{settings.auto_approve_max_risk}",
                )
            )
        if step.operation in ALWAYS_APPROVE:
            found.append(Finding("policy_approval", f"{step.operation} always needs a person"))
        if "approval" in document.verdicts_for(step):
            found.append(
                Finding(
                    "policy_approval",
                    f"the policy file asks for approval of {step.operation} on {step.target}",
                )
            )
        if any(w.covers(step.target, facts.now) for w in document.maintenance_windows):
            found.append(Finding("maintenance_window", f"{step.target} is in a maintenance window"))
        fixed = facts.of(step.target).remediated_at
        cooldown = settings.remediation_cooldown
        if fixed is not None and (facts.now - fixed).total_seconds() < cooldown:
            ago = (facts.now - fixed).total_seconds()
            found.append(
                Finding(
                    "recently_remediated",
                    f"{step.target} was fixed {ago:.0f}s ago (REMEDIATION_COOLDOWN={cooldown:g}s):"
                    " a person decides whether to act on it again",
                )
            )
    return list(dict.fromkeys(found))


def decide(
    plan: Plan,
    settings: Settings,
    document: PolicyDocument | None = None,
    facts: PolicyFacts | None = None,
    replicas_before: Mapping[str, int] | None = None,
) -> Verdict:
    """The verdict for a remediation plan, when it is made."""
    document = document or PolicyDocument()
    facts = facts or PolicyFacts()
    name = f"policy {document.digest}"
    refused = refusals(plan.steps, settings, document, facts, replicas_before=replicas_before)
    if refused:
        return Verdict("refuse", refused, name)
    if not any(OPERATIONS[s.operation].mutating for s in plan.steps):
        return Verdict("auto", [], name)
    found = asks(plan.steps, settings, document, facts)
    if plan.confidence < settings.confidence_threshold:
        found.append(
            Finding(
                "low_confidence",
                f"confidence {plan.confidence:.2f} is below CONFIDENCE_THRESHOLD="
                f"{settings.confidence_threshold:g}",
            )
        )
    return Verdict("approval" if found else "auto", found, name)


def judge_step(
    step: PlanStep,
    settings: Settings,
    document: PolicyDocument,
    facts: PolicyFacts,
    *,
    by_person: bool,
    undo: bool = False,
    replicas_before: Mapping[str, int] | None = None,
) -> StepVerdict:
    """One step, right before it runs, against facts read in the ledger's transaction.

    Every alert of the run resolved before it acted: it stops (superseded). Another open run
    already acting on the same target: this one joins it instead of acting twice. A refusal refuses. A step the policy approved by itself is asked of a person when a
    reason to ask appeared since (the kill switch, a maintenance window); a step a person
    approved runs.
    """
    target = facts.of(step.target)
    mutating = OPERATIONS.get(step.operation, OPERATIONS["health_check"]).mutating
    if mutating and not undo and facts.run_resolved and not facts.run_target_keys:
        note = "every alert of the run was resolved before the agent acted"
        return StepVerdict("stop", note=note)
    if mutating and not undo and target.handled_by:
        return StepVerdict(
            "join",
            [Finding("joined", f"run {target.handled_by} is acting on {step.target} now")],
            handled_by=target.handled_by,
        )
    refused = refusals(
        [step], settings, document, facts, undo=undo, replicas_before=replicas_before
    )
    if refused:
        return StepVerdict("refuse", refused)
    if not by_person and not undo:
        found = asks([step], settings, document, facts)
        if found:
            return StepVerdict("ask", found)
    return StepVerdict("run")
