"""plan: turn the diagnosis into steps, using what `learn` remembered about this service.

Whether the steps may run is not decided here but in `approve`, which records the verdict on
the plan (`requires_approval`, and the policy's reasons in `why`).
"""

from __future__ import annotations

from devops_agent.context import AgentContext
from devops_agent.nodes.common import investigation
from devops_agent.state import IncidentState, Plan, RunState


async def plan(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    history = await ctx.store.history(run.service)
    case = investigation(run, ctx.settings.max_replicas, history=history)
    diagnosis = run.diagnosis
    assert diagnosis is not None, "root_cause always diagnoses before plan"
    made: Plan = await ctx.reasoner.plan(case, diagnosis)
    update: IncidentState = {"plan": made.model_dump(mode="json"), "reasoning": case.calls}
    if made.action == "no_action":
        update["outcome"] = "no_action"
    elif made.action == "escalate":
        update["escalation"] = made.why
        update["escalation_reason"] = made.reason or "cannot_fix"
    await ctx.audit.append(
        run.run_id, "plan", made.reasoner, {"plan": made.model_dump(mode="json")}
    )
    return update
