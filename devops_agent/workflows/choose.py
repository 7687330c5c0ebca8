"""Choosing a workflow for a diagnosis, and turning one of its phases into plan steps.

Candidates are the workflows whose `when` matches the category and the target's labels, whose
`when_not` does not, and whose preconditions hold. The most specific wins: the operator's own
over a built-in, then more label selectors, then fewer categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devops_agent.operations import OPERATIONS
from devops_agent.state import Evidence, PlanStep, Target
from devops_agent.workflows.catalog import Catalog
from devops_agent.workflows.model import Phase, Workflow


@dataclass
class Situation:
    """What the templates and the preconditions read."""

    target: Target
    category: str
    down: list[Evidence]  # dependencies found down, declared first
    target_down: bool

    @property
    def values(self) -> dict[str, Any]:
        replicas = len(self.target.containers)
        return {
            "target": self.target.name,
            "dependency": self.down[0].target if self.down else "",
            "replicas": replicas,
            "replicas_plus_one": replicas + 1,
        }

    def holds(self, condition: str) -> bool:
        return {
            "scalable": self.target.scalable,
            "dependency_down": bool(self.down),
            "target_down": self.target_down,
        }[condition]


def _applies(workflow: Workflow, situation: Situation) -> bool:
    labels = situation.target.labels
    if not workflow.when.matches(situation.category, labels):
        return False
    if not workflow.when_not.empty() and workflow.when_not.matches(situation.category, labels):
        return False
    return all(situation.holds(c) for c in workflow.preconditions)


def _score(workflow: Workflow) -> tuple[int, int, int]:
    return (
        int(workflow.source != "builtin"),
        len(workflow.when.labels),
        -len(workflow.when.categories),
    )


def choose(catalog: Catalog, situation: Situation) -> Workflow | None:
    """The best workflow for this situation, or None when none applies."""
    found = [w for w in catalog.workflows if _applies(w, situation)]
    return max(found, key=_score) if found else None


def _fill(value: Any, values: dict[str, Any]) -> Any:
    """A template filled in; a value that is one template name alone keeps its type (a number)."""
    if not isinstance(value, str):
        return value
    if value.startswith("{") and value.endswith("}") and value[1:-1] in values:
        return values[value[1:-1]]
    return value.format(**values)


def steps_of(phase: Phase, situation: Situation) -> list[PlanStep]:
    """The phase's steps for this target: templates filled in, risk from the registry, the
    project where the target (or the dependency) has one."""
    values = situation.values
    made = []
    for template in phase.steps:
        target = _fill(template.target, values)
        project = (
            situation.target.params.get("project")
            if target == situation.target.name
            else next((d.data.get("project") for d in situation.down if d.target == target), None)
        )
        params = {k: _fill(v, values) for k, v in template.params.items()}
        named = {"target": target, **({"project": project} if project else {})}
        made.append(
            PlanStep(
                operation=template.operation,
                target=target,
                params={**named, **params},
                risk=OPERATIONS[template.operation].risk,
                rationale=_fill(template.rationale, values),
            )
        )
    return made
