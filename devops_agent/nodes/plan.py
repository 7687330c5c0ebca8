"""plan: turn the diagnosis into steps, using what `learn` remembered about this service.

Whether the steps may run is not decided here but in `approve`, which records the verdict on
the plan (`requires_approval`, and the policy's reasons in `why`).
"""

from __future__ import annotations

from devops_agent.context import AgentContext
from devops_agent.nodes.common import investigation
from devops_agent.nodes.validate import settled_health
from devops_agent.state import IncidentState, Plan, RunState


def _handled_dependency(run: RunState) -> tuple[str, str] | None:
    """A dependency of the target that another run acted on moments ago: (its name, that run)."""
    for item in run.evidence:
        if item.source == "dependency" and item.data.get("handled_by"):
            return item.target, str(item.data["handled_by"])
    return None


async def plan(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    diagnosis = run.diagnosis
    handled = _handled_dependency(run)
    if handled and diagnosis and diagnosis.category != "no_fault":
        # One incident: the run that acted on the dependency handles it; this one records how
        # its own service fares, and ends.
        dependency, handler = handled
        why = f"run {handler} acted on {dependency}, which {run.service} depends on"
        joined = Plan(action="no_action", why=f"joined: {why}", confidence=diagnosis.confidence)
        seen = await settled_health(ctx, run)
        await ctx.audit.append(
            run.run_id, "plan", "agent", {"plan": joined.model_dump(mode="json")}
        )
        return {
            "plan": joined.model_dump(mode="json"),
            "outcome": "superseded",
            "escalation_reason": "joined",
            "handled_by": handler,
            "validation": seen.model_dump(mode="json"),
            "notes": [f"joined: {why}"],
        }
    history = await ctx.store.history(run.service)
    case = investigation(run, ctx.settings, history=history)
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
