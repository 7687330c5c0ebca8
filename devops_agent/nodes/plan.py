"""plan: turn the diagnosis into steps, using what `learn` remembered about this service."""

from __future__ import annotations

from typing import Any

from devops_agent.context import AgentContext
from devops_agent.nodes.common import investigation, policy_facts
from devops_agent.policy import decide
from devops_agent.state import Diagnosis, IncidentState, Plan


async def plan(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    history = await ctx.store.history(state.get("service") or "")
    case = investigation(state, ctx.settings.max_replicas, history=history)
    diagnosis = Diagnosis.model_validate(state["diagnosis"])
    made: Plan = await ctx.reasoner.plan(case, diagnosis)
    update: dict[str, Any] = {}
    verdict_name = ""
    if made.action == "remediate":
        facts = await policy_facts(ctx, [s.target for s in made.steps])
        verdict = decide(made, ctx.settings, ctx.policy, facts)
        verdict_name = f"{verdict.decision} ({verdict.policy})"
        made.requires_approval = verdict.decision != "auto"
        made.why = f"{made.why} Policy: {verdict.why}."
    elif made.action == "no_action":
        update["outcome"] = "no_action"
    else:
        update["escalation"] = made.why
    await ctx.audit.append(
        str(state.get("run_id")),
        "plan",
        made.reasoner,
        {"plan": made.model_dump(mode="json"), "verdict": verdict_name},
    )
    return {**update, "plan": made.model_dump(mode="json"), "reasoning": case.calls}


def route_after_plan(state: IncidentState) -> str:
    action = (state.get("plan") or {}).get("action")
    return {"remediate": "approve", "escalate": "escalate"}.get(str(action), "learn")
