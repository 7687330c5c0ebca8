"""Checking the model's answers before anything acts on them.

The LLM proposes, the policy disposes, and this module stands between the two: a category from
the fixed list, a confidence in 0..1, operations from the registry with parameters that its
pydantic models accept, targets limited to the incident's target and the dependencies found in
the evidence, and no shell strings anywhere. An answer with any problem is rejected as a whole
(a plan with one step removed is another plan), with every reason kept for the run's record.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from devops_agent.policy.checks import (
    command_finding,
    did_not_hold,
    ineffective,
    scale_findings,
)
from devops_agent.reasoning import planning
from devops_agent.reasoning.answers import DiagnosisAnswer, PlanAnswer, StepAnswer
from devops_agent.reasoning.base import Investigation
from devops_agent.state import Diagnosis, Plan, PlanStep
from devops_agent.tools.registry import Registry
from devops_agent.workflows import Catalog, Workflow, steps_of

M = TypeVar("M", bound=BaseModel)

# Characters that only mean something to a shell, and programs that would run a shell string.
SHELL_CHARS = re.compile(r"[;&|`$<>\\\n\r]")
INTERPRETERS = frozenset(
    {"sh", "bash", "zsh", "dash", "ash", "ksh", "csh", "tcsh", "fish", "busybox", "env", "eval"}
    | {"xargs", "python", "python3", "perl", "ruby", "node", "php", "lua"}
)
MAX_REASONS = 10


def parse_answer(model: type[M], raw: Any) -> tuple[M | None, list[str]]:
    """The answer as `model`, or the reasons it does not fit (category, confidence, shape)."""
    if not isinstance(raw, dict):
        return None, [f"the answer is a {type(raw).__name__}, not a JSON object"]
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, [
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}"
            for err in exc.errors()[:MAX_REASONS]
        ]


def allowed_targets(case: Investigation) -> list[str]:
    """The incident's target and the dependencies that root_cause found in the evidence."""
    names = [case.target.name] if case.target else []
    names += [e.target for e in case.evidence if e.source == "dependency" and e.target]
    return list(dict.fromkeys(names))


def project_of(case: Investigation, name: str) -> str | None:
    """The Compose project of an allowed target, as the backend resolved it (never the model's)."""
    if case.target and name == case.target.name:
        return case.target.params.get("project")
    for item in case.evidence:
        if item.source == "dependency" and item.target == name:
            return item.data.get("project")
    return None


def shell_problems(value: Any, where: str) -> list[str]:
    """Every string inside `value` that looks like shell syntax or starts an interpreter."""
    found: list[str] = []
    if isinstance(value, str):
        if SHELL_CHARS.search(value) or "$(" in value:
            found.append(f"{where}: {value[:80]!r} contains shell syntax")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += shell_problems(str(key), where) + shell_problems(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        if value and isinstance(value[0], str):
            program = value[0].rsplit("/", 1)[-1]
            if program in INTERPRETERS:
                found.append(f"{where}: {value[0]!r} would run a shell or an interpreter")
        for i, item in enumerate(value):
            found += shell_problems(item, f"{where}[{i}]")
    return found


def check_diagnosis(answer: DiagnosisAnswer, case: Investigation) -> list[str]:
    """Reasons to reject a parsed diagnosis (its fields are already typed by DiagnosisAnswer)."""
    reasons: list[str] = []
    if case.target is None and answer.category != "unknown":
        reasons.append("the incident has no resolved target: only `unknown` fits")
    return reasons


def check_step(
    step: StepAnswer,
    number: int,
    case: Investigation,
    registry: Registry,
    targets: Sequence[str],
    command_allowlist: Sequence[Sequence[str]],
) -> tuple[PlanStep | None, list[str]]:
    """The step as a PlanStep (risk from the registry, never from the model), or why not."""
    where = f"step {number} ({step.operation} on {step.target!r})"
    spec = registry.spec(step.operation)
    if spec is None:
        return None, [f"{where}: {step.operation!r} is not an operation of the registry"]
    reasons: list[str] = []
    if step.target not in targets:
        reasons.append(
            f"{where}: {step.target!r} is neither the incident's target nor a dependency "
            f"found in the evidence (allowed: {', '.join(targets) or 'none'})"
        )
    params = dict(step.params)
    if str(params.get("target", step.target)) != step.target:
        reasons.append(
            f"{where}: params.target {params['target']!r} differs from the step's target"
        )
    params["target"] = step.target
    project = project_of(case, step.target)
    if params.get("project") not in (None, project):
        reasons.append(f"{where}: params.project {params['project']!r} is not the target's")
    params.pop("project", None)
    if project:
        params["project"] = project
    reasons += shell_problems(params, f"{where} params")
    parsed = registry.validate(step.operation, params)
    if isinstance(parsed, str):
        return None, [*reasons, f"{where}: {parsed}"]
    values = parsed.model_dump(mode="json", exclude_none=True)
    if step.operation == "execute_command":
        refused = command_finding(values["argv"], command_allowlist)
        if refused:
            reasons.append(f"{where}: {refused.message}")
    if step.operation == "scale_service":
        ours = case.target is not None and step.target == case.target.name
        before = len(case.target.containers) if case.target and ours else None
        for found in scale_findings(values["replicas"], before, case.max_replicas, None):
            reasons.append(f"{where}: {found.message}")
        if case.target and ours and not case.target.scalable:
            reasons.append(f"{where}: {step.target} is a single container, not a scalable service")
    if reasons:
        return None, reasons
    return PlanStep(
        operation=step.operation,
        target=step.target,
        params=values,
        risk=spec.risk,
        rationale=step.rationale,
    ), []


def workflow_steps(
    answer: PlanAnswer, case: Investigation, diagnosis: Diagnosis, catalog: Catalog | None
) -> tuple[list[StepAnswer], Workflow | None, int, list[str]]:
    """A plan that names a workflow: its next phase's steps, as if the model had written them
    (so they are checked the same), or why it cannot be used."""
    workflow = catalog.get(str(answer.workflow)) if catalog else None
    if workflow is None or case.target is None:
        return [], None, 0, [f"workflow {answer.workflow!r} is not in the catalog"]
    situation = planning.situation_of(case, diagnosis)
    index = planning.next_phase(case, workflow.id)
    if index >= len(workflow.phases):
        return [], None, 0, [f"workflow {workflow.id} has no phase left"]
    made = steps_of(workflow.phases[index], situation)
    steps = [
        StepAnswer(
            operation=s.operation,
            target=s.target,
            params={k: v for k, v in s.params.items() if k not in ("target", "project")},
            rationale=s.rationale,
        )
        for s in made
    ]
    return steps, workflow, index, []


def check_plan(
    answer: PlanAnswer,
    case: Investigation,
    diagnosis: Diagnosis,
    registry: Registry,
    command_allowlist: Sequence[Sequence[str]] = (),
    catalog: Catalog | None = None,
) -> tuple[Plan | None, list[str]]:
    """The plan the agent may consider (still subject to the policy), or why it is rejected."""
    reasons: list[str] = []
    steps: list[PlanStep] = []
    targets = allowed_targets(case)
    workflow: Workflow | None = None
    index = 0
    if answer.action == "remediate" and answer.workflow:
        proposed, workflow, index, reasons = workflow_steps(answer, case, diagnosis, catalog)
        answer = answer.model_copy(update={"steps": proposed})
    if answer.action == "remediate" and not reasons:
        if not answer.steps:
            reasons.append("a remediation with no steps")
        for number, step in enumerate(answer.steps, start=1):
            made, problems = check_step(step, number, case, registry, targets, command_allowlist)
            reasons += problems
            if made is not None:
                steps.append(made)
        for made in steps:
            useless = ineffective(case.history, diagnosis.category, made.operation) or (
                did_not_hold(made, case.tried)
            )
            if useless:
                reasons.append(useless.message)
    elif answer.action == "no_action" and diagnosis.category != "no_fault":
        reasons.append(f"no_action while the diagnosis is {diagnosis.category}")
    if reasons:
        return None, reasons[:MAX_REASONS]
    return Plan(
        action=answer.action,
        steps=steps,
        why=answer.why,
        confidence=min(answer.confidence, diagnosis.confidence),
        reasoner="llm",
        **(
            {
                "workflow": workflow.id,
                "phase": index,
                "success": workflow.phases[index].success.model_dump(
                    mode="json", exclude_none=True
                ),
                "on_failure": workflow.phases[index].on_failure,
            }
            if workflow
            else {}
        ),
    ), []
