"""The rules reasoner's plans: a workflow of the catalog for the diagnosis, phase by phase.

A diagnosis that a restart or a replica cannot fix (a configuration error, a full disk, a crash
loop, too little evidence) is an escalation. Otherwise the best workflow for the situation is
chosen (devops_agent/workflows) and its first phase becomes the steps; after a phase whose fix
did not work (and whose `on_failure` is `next`), the run goes on with the same workflow's next
phase, whatever the new diagnosis, unless that is one to escalate (a crash loop, say). A step that learning or this run showed
not to hold is not planned by itself; the plan cites what was learned.
"""

from __future__ import annotations

from functools import lru_cache

from devops_agent.policy.checks import did_not_hold, ineffective, scale_findings
from devops_agent.reasoning.base import Investigation
from devops_agent.state import Diagnosis, Plan
from devops_agent.workflows import Catalog, Situation, choose, load_catalog, steps_of

ESCALATIONS: dict[str, tuple[str, str]] = {
    "config_error": (
        "cannot_fix",
        "its configuration must be fixed by a person; restarting cannot fix it",
    ),
    "crash_loop": (
        "crash_loop",
        "it keeps crashing after restarts; another restart would not help",
    ),
    "disk_full": ("cannot_fix", "the disk must be cleaned or grown by a person"),
    "unknown": ("cannot_fix", "the evidence does not show a cause the agent can fix"),
}


@lru_cache(maxsize=1)
def builtin_catalog() -> Catalog:
    return load_catalog(None)


def situation_of(case: Investigation, diagnosis: Diagnosis) -> Situation:
    assert case.target is not None
    down = [
        e for e in case.evidence if e.source == "dependency" and not e.data.get("healthy", True)
    ]
    declared = case.target.depends_on
    down.sort(key=lambda e: (e.target not in declared, e.target))
    own = case.find("health_check")
    target_down = bool(own) and any(
        not c.get("running")
        for c in (own.data.get("containers") or [])  # type: ignore[union-attr]
    )
    return Situation(case.target, diagnosis.category, down, target_down)


def next_phase(case: Investigation, workflow_id: str) -> int:
    """The phase to run: the first, or the one after the phase this run tried before."""
    previous = case.plan
    if previous and previous.workflow == workflow_id and case.attempts > 0:
        return (previous.phase or 0) + 1
    return 0


def plan(case: Investigation, diagnosis: Diagnosis, catalog: Catalog | None = None) -> Plan:
    """Turn a diagnosis into steps from the registry, or into no action, or an escalation."""
    conf, target, category = diagnosis.confidence, case.target, diagnosis.category
    if category == "no_fault":
        return Plan(action="no_action", why=diagnosis.root_cause, confidence=conf)
    if target is None:
        why = "unknown target: " + diagnosis.root_cause
        return Plan(action="escalate", why=why, confidence=conf, reason="unknown_target")
    if category in ESCALATIONS:
        code, reason = ESCALATIONS[category]
        why = f"{diagnosis.root_cause} Escalating: {reason}."
        return Plan(action="escalate", why=why, confidence=conf, reason=code)
    situation = situation_of(case, diagnosis)
    catalog = catalog or builtin_catalog()
    going_on = case.plan.workflow if case.plan and case.attempts > 0 else None
    workflow = (catalog.get(going_on) if going_on else None) or choose(catalog, situation)
    if workflow is None:
        if category in ("cpu_saturation", "overload") and not target.scalable:
            why = (
                f"{diagnosis.root_cause} {target.name} is a single container, not a scalable "
                "service: it needs more capacity from a person."
            )
        else:
            why = f"{diagnosis.root_cause} No workflow of the catalog applies to it."
        return Plan(action="escalate", why=why, confidence=conf, reason="cannot_fix")
    index = next_phase(case, workflow.id)
    if index >= len(workflow.phases):
        why = f"{diagnosis.root_cause} Workflow {workflow.id} has no phase left after {index}."
        return Plan(action="escalate", why=why, confidence=conf, reason="did_not_hold")
    phase = workflow.phases[index]
    steps = steps_of(phase, situation)
    for step in steps:
        if step.operation == "scale_service":
            before = len(target.containers)
            refused = scale_findings(int(step.params["replicas"]), before, case.max_replicas, None)
            if refused:
                why = f"{target.name} cannot get another replica: {refused[0].message}"
                return Plan(action="escalate", why=why, confidence=conf, reason=refused[0].code)
        useless = ineffective(case.history, category, step.operation) or did_not_hold(
            step, case.tried
        )
        if useless:
            why = f"{useless.message} (on {target.name}): escalating instead."
            return Plan(action="escalate", why=why, confidence=conf, reason=useless.code)
    learned = [
        case.history[(category, op)].cite(op)
        for op in dict.fromkeys(s.operation for s in steps)
        if (category, op) in case.history
    ]
    why = f"{diagnosis.root_cause} Workflow {workflow.id}, phase {phase.name}." + (
        f" Learned: {'; '.join(learned)}." if learned else ""
    )
    return Plan(
        action="remediate",
        steps=steps,
        why=why,
        confidence=conf,
        workflow=workflow.id,
        phase=index,
        success=phase.success.model_dump(mode="json", exclude_none=True),
        on_failure=phase.on_failure,
    )
