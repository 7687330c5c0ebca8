"""learn: store the incident with its evidence, actions and outcome, and count what worked."""

from __future__ import annotations

from devops_agent.context import AgentContext
from devops_agent.state import IncidentState, RunState


async def learn(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    outcome = run.outcome or "escalated"
    diagnosis = run.diagnosis
    await ctx.store.record_incident(
        run_id=run.run_id,
        service=run.service,
        # Under what the fault was when the agent met it: an unfixed crash is a crash that the
        # restart did not fix, not a crash loop (memory.learning).
        category=state.get("first_category") or (diagnosis.category if diagnosis else "unknown"),
        root_cause=(diagnosis.root_cause if diagnosis else "") or run.escalation or "",
        confidence=diagnosis.confidence if diagnosis else 0.0,
        outcome=outcome,
        evidence=[{"source": e.source, "summary": e.summary} for e in run.evidence],
        actions=[a.model_dump(mode="json") for a in run.actions],
        attempts=run.attempts,
    )
    await ctx.audit.append(
        run.run_id,
        "outcome",
        "agent",
        {
            "outcome": outcome,
            "escalation": run.escalation,
            "reason": run.escalation_reason,
            "handled_by": run.handled_by,
            "attempts": run.attempts,
        },
    )
    return {"outcome": outcome}
