"""execute: run the plan's steps, each recorded in the action ledger before and after it runs.

The ledger key is (run, attempt, step). A step found in the ledger is never run again: when the
process died after recording it, or the node is re-run on resume, it comes back as `skipped`.
"""

from __future__ import annotations

from typing import Any

from devops_agent.context import AgentContext
from devops_agent.policy import decide
from devops_agent.state import ActionRecord, IncidentState, Plan, utcnow


async def execute(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    plan = Plan.model_validate(state["plan"])
    run_id = str(state.get("run_id"))
    attempt = state.get("attempts", 0) + 1
    records: list[dict[str, Any]] = []
    if decide(plan, ctx.settings).decision == "refuse":  # belt and braces: approve checked already
        return {"attempts": attempt, "actions": records}
    for index, step in enumerate(plan.steps):
        params = {**step.params, "target": step.target}
        record = ActionRecord(
            attempt=attempt,
            step=index,
            operation=step.operation,
            target=step.target,
            params=params,
            status="succeeded",
            started_at=utcnow(),
        )
        earlier = await ctx.store.begin_step(
            run_id, attempt, index, step.operation, step.target, params
        )
        if earlier is not None:
            record.status = "skipped"
            record.output = f"already recorded ({earlier.status}) before a resume; not run again"
            records.append(record.model_dump(mode="json"))
            continue
        result = await ctx.registry.run(step.operation, params)
        if result.ok:
            record.status = "succeeded"
        elif result.error in ("refused", "invalid"):
            record.status = "refused"
        else:
            record.status = "failed"
        record.output = result.message if result.ok else f"{result.error}: {result.message}"
        record.finished_at = utcnow()
        await ctx.store.finish_step(run_id, attempt, index, record.status, record.output)
        records.append(record.model_dump(mode="json"))
        if not result.ok:
            break
    return {"attempts": attempt, "actions": records}
