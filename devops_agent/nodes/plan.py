"""plan: turn the diagnosis into steps, using what `learn` remembered about this service.

Whether the steps may run is not decided here but in `approve`, which records the verdict on
the plan (`requires_approval`, and the policy's reasons in `why`).
"""

from __future__ import annotations

from typing import Any

from devops_agent.context import AgentContext
from devops_agent.nodes.common import investigation
from devops_agent.state import Diagnosis, IncidentState, Plan


async def plan(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    history = await ctx.store.history(state.get("service") or "")
    case = investigation(state, ctx.settings.max_replicas, history=history)
    diagnosis = Diagnosis.model_validate(state["diagnosis"])
    made: Plan = await ctx.reasoner.plan(case, diagnosis)
    update: dict[str, Any] = {}
    if made.action == "no_action":
        update["outcome"] = "no_action"
    elif made.action == "escalate":
        update["escalation"] = made.why
        update["escalation_reason"] = made.reason or "cannot_fix"
    await ctx.audit.append(
        str(state.get("run_id")),
        "plan",
        made.reasoner,
        {"plan": made.model_dump(mode="json")},
    )
    return {**update, "plan": made.model_dump(mode="json"), "reasoning": case.calls}


def route_after_plan(state: IncidentState) -> str:
    action = (state.get("plan") or {}).get("action")
    return {"remediate": "approve", "escalate": "escalate"}.get(str(action), "learn")
