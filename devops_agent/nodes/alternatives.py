"""What an approval request offers beside its plan: the alternatives considered, and why not,
and what learning says about the plan's operations on this service.

Alternatives come from the workflow catalog: the later phases of the chosen workflow (tried only
after an earlier one did not hold) and the other workflows that apply to the situation (less
specific than the chosen one). A person may approve one of them instead (an override); it is
validated against the registry and the policy again when chosen (devops_agent/approvals.py).
"""

from __future__ import annotations

from typing import Any

from devops_agent.context import AgentContext
from devops_agent.memory.learning import Learned
from devops_agent.nodes.common import investigation
from devops_agent.reasoning.planning import builtin_catalog, situation_of
from devops_agent.state import Plan, RunState
from devops_agent.workflows import Catalog, choose, steps_of
from devops_agent.workflows.choose import _applies

MAX_ALTERNATIVES = 5


def _catalog(ctx: AgentContext) -> Catalog:
    found = getattr(ctx.reasoner, "catalog", None)
    return found if isinstance(found, Catalog) else builtin_catalog()


def alternatives(
    run: RunState, plan: Plan, ctx: AgentContext, history: Learned
) -> list[dict[str, Any]]:
    """Other plans a person may choose instead, each with why the agent did not pick it."""
    diagnosis, target = run.diagnosis, run.target
    if diagnosis is None or target is None:
        return []
    case = investigation(run, ctx.settings, history=history)
    situation = situation_of(case, diagnosis)
    catalog = _catalog(ctx)
    found: list[dict[str, Any]] = []
    chosen = catalog.get(plan.workflow) if plan.workflow else None
    if chosen is not None:
        for index in range((plan.phase or 0) + 1, len(chosen.phases)):
            phase = chosen.phases[index]
            why_not = (
                f"phase {phase.name} of workflow {chosen.id} comes only after phase "
                f"{chosen.phases[plan.phase or 0].name} did not hold"
            )
            found.append(_alternative(chosen.id, index, steps_of(phase, situation), why_not))
    best = choose(catalog, situation)
    for workflow in catalog.workflows:
        if workflow.id == plan.workflow or not _applies(workflow, situation):
            continue
        why_not = f"workflow {workflow.id} applies too, but {best.id if best else plan.workflow} is more specific"
        found.append(_alternative(workflow.id, 0, steps_of(workflow.phases[0], situation), why_not))
    own = [s.model_dump(mode="json") for s in plan.steps]
    unique = [a for a in found if a["steps"] and a["steps"] != own]
    for number, item in enumerate(unique[:MAX_ALTERNATIVES]):
        item["id"] = number
    return unique[:MAX_ALTERNATIVES]


def _alternative(workflow: str, phase: int, steps: list[Any], why_not: str) -> dict[str, Any]:
    return {
        "workflow": workflow,
        "phase": phase,
        "steps": [s.model_dump(mode="json") for s in steps],
        "why_not": why_not,
    }


def learning(run: RunState, plan: Plan, history: Learned) -> list[str]:
    """What was learned about each operation of the plan for this kind of incident."""
    category = run.category or (run.diagnosis.category if run.diagnosis else "")
    lines = []
    for operation in dict.fromkeys(s.operation for s in plan.steps):
        track = history.get((category, operation))
        lines.append(
            track.cite(operation)
            if track
            else f"nothing learned yet about {operation} for {category} on {run.service}"
        )
    return lines
