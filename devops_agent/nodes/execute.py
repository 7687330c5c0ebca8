"""execute: run the plan's steps, each recorded in the action ledger before and after it runs.

The ledger key is (run, attempt, step). A step found in the ledger is never run again: when the
process died after recording it, or the node is re-run on resume, it comes back as `skipped`.
Just before each step the policy's refusals are checked again (time may have passed while a
person decided), a snapshot for its inverse is taken, and with DRY_RUN nothing is changed.
"""

from __future__ import annotations

from typing import Any

from devops_agent.context import AgentContext
from devops_agent.nodes.common import policy_facts
from devops_agent.policy import Facts, refusals
from devops_agent.state import ActionRecord, IncidentState, Plan, PlanStep, utcnow
from devops_agent.tools.registry import OperationResult


async def snapshot(ctx: AgentContext, step: PlanStep) -> dict[str, Any] | None:
    """What the step's inverse needs (the replica count before a scale)."""
    if step.operation == "scale_service":
        target = await ctx.registry.backend.resolve([step.target])
        return {"replicas": len(target.containers)} if target else None
    return None


async def run_step(
    ctx: AgentContext,
    run_id: str,
    attempt: int,
    index: int,
    step: PlanStep,
    rollback_of: int | None = None,
    recheck: bool = True,
) -> ActionRecord:
    """Check, snapshot, record in the ledger, run (or not, in a dry run), record the end."""
    params = {**step.params, "target": step.target}
    record = ActionRecord(
        attempt=attempt,
        step=index,
        operation=step.operation,
        target=step.target,
        params=params,
        status="succeeded",
        started_at=utcnow(),
        rollback_of=rollback_of,
    )
    # Right after the policy approved by itself, its facts are fresh; after a person's decision
    # (minutes or days later) or for a rollback, read them again.
    facts = await policy_facts(ctx, [step.target]) if recheck else Facts()
    refused = refusals([step], ctx.settings, ctx.policy, facts, undo=rollback_of is not None)
    record.snapshot = await snapshot(ctx, step)
    before = (record.snapshot or {}).get("replicas")
    if step.operation == "scale_service" and before is not None:
        change = abs(int(params.get("replicas", before)) - before)
        if change > ctx.settings.max_scale_step:
            refused.append(
                f"scaling by {change} exceeds MAX_SCALE_STEP={ctx.settings.max_scale_step}"
            )
    earlier = await ctx.store.begin_step(
        run_id, attempt, index, step.operation, step.target, params
    )
    if earlier is not None:
        record.status = "skipped"
        record.output = f"already recorded ({earlier.status}) before a resume; not run again"
        return record
    if refused:
        record.status, record.output = "refused", "; ".join(refused)
    elif ctx.settings.dry_run:
        record.status, record.output = (
            "dry_run",
            f"DRY_RUN: would run {step.operation} with {params}",
        )
    else:
        result: OperationResult = await ctx.registry.run(step.operation, params)
        if result.ok:
            record.status, record.output = "succeeded", result.message
        else:
            record.status = "refused" if result.error in ("refused", "invalid") else "failed"
            record.output = f"{result.error}: {result.message}"
    record.finished_at = utcnow()
    await ctx.store.finish_step(run_id, attempt, index, record.status, record.output)
    await ctx.audit.append(run_id, "action", "agent", record.model_dump(mode="json"))
    return record


async def execute(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    plan = Plan.model_validate(state["plan"])
    run_id = str(state.get("run_id"))
    attempt = state.get("attempts", 0) + 1
    records: list[ActionRecord] = []
    by_policy = (state.get("approval") or {}).get("approver") == "policy"
    for index, step in enumerate(plan.steps):
        record = await run_step(
            ctx, run_id, attempt, index, step, recheck=not by_policy or index > 0
        )
        records.append(record)
        if record.status in ("failed", "refused"):
            break
    update: dict[str, Any] = {
        "attempts": attempt,
        "actions": [r.model_dump(mode="json") for r in records],
    }
    refused = [r.output for r in records if r.status == "refused"]
    if refused:
        update["escalation"] = f"the policy refused a step: {refused[0]}"
    elif records and all(r.status == "dry_run" for r in records):
        update["escalation"] = "DRY_RUN: the plan was recorded, nothing was changed"
    return update


def route_after_execute(state: IncidentState) -> str:
    return "escalate" if state.get("escalation") else "validate"
