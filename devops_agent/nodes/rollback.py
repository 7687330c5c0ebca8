"""rollback: when the last attempt did not make the service healthy, undo what can be undone.

Each succeeded step of this run whose operation declares an inverse (scale_service: back to the
replica count snapshotted before it ran) is reversed, newest first, through the same ledger and
policy checks as any step. The run shows both the action and its rollback.
"""

from __future__ import annotations

from devops_agent.context import AgentContext
from devops_agent.nodes.execute import run_step
from devops_agent.operations import OPERATIONS
from devops_agent.state import HAPPENED, ActionRecord, IncidentState, PlanStep, RunState

ROLLBACK_STEP_OFFSET = 1000  # ledger step numbers of rollbacks: never clash with plan steps


def inverse_of(action: ActionRecord) -> PlanStep | None:
    spec = OPERATIONS.get(action.operation)
    if spec is None or spec.inverse is None or action.status not in HAPPENED or not action.snapshot:
        return None
    if action.operation == "scale_service" and "replicas" in action.snapshot:
        return PlanStep(
            operation=spec.inverse,
            target=action.target,
            risk=spec.risk,
            params={
                **({"project": action.params["project"]} if action.params.get("project") else {}),
                "target": action.target,
                "replicas": action.snapshot["replicas"],
            },
            rationale=f"rollback: back to {action.snapshot['replicas']} replicas",
        )
    return None


async def rollback(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    actions = run.actions
    undone = {a.rollback_of for a in actions if a.rollback_of is not None}
    records = []
    for position, action in reversed(list(enumerate(actions))):
        step = inverse_of(action)
        if step is None or position in undone or action.rollback_of is not None:
            continue
        outcome = await run_step(
            ctx,
            run.run_id,
            action.attempt,
            ROLLBACK_STEP_OFFSET + position,
            step,
            by_person=False,
            rollback_of=position,
        )
        if outcome.record is not None:
            records.append(outcome.record.model_dump(mode="json"))
    if not records:
        return {}
    done = ", ".join(f"{r['operation']}({r['target']}) {r['status']}" for r in records)
    return {"actions": records, "escalation": f"{run.escalation}; rolled back: {done}"}
