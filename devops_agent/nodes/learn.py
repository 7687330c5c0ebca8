"""learn: store the incident with its evidence, actions and outcome, count what worked, and move
the autonomy ladder (memory/ladder.py)."""

from __future__ import annotations

from devops_agent.context import AgentContext
from devops_agent.memory.ladder import Result, Rung
from devops_agent.nodes.execute import approved_by_person
from devops_agent.state import HAPPENED, IncidentState, RunState


def rungs_of(run: RunState) -> list[Rung]:
    """How the run's outcome moves the ladder for each operation it took (or a person refused)."""
    outcome = run.outcome
    if outcome == "rejected":
        plan = run.plan
        return [
            Rung(op, "rejected")
            for op in dict.fromkeys(s.operation for s in (plan.steps if plan else []))
        ]
    acted = [a for a in run.actions if a.status in HAPPENED and a.rollback_of is None]
    rolled_back = any(a.rollback_of is not None and a.status in HAPPENED for a in run.actions)
    result: Result
    if outcome == "resolved" and not rolled_back:
        result = "approved_held" if approved_by_person(run.approval) else "held"
    elif outcome in ("escalated", "resolved"):
        result = "failed"
    else:
        return []  # superseded, no action: nothing was learned of the operations
    return [Rung(op, result) for op in dict.fromkeys(a.operation for a in acted)]


async def learn(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    outcome = run.outcome or "escalated"
    diagnosis = run.diagnosis
    # Under what the fault was when the agent met it: an unfixed crash is a crash that the
    # restart did not fix, not a crash loop (memory.learning).
    category = run.category or "unknown"
    changes = await ctx.store.record_incident(
        run_id=run.run_id,
        service=run.service,
        category=category,
        root_cause=(diagnosis.root_cause if diagnosis else "") or run.escalation or "",
        confidence=diagnosis.confidence if diagnosis else 0.0,
        outcome=outcome,
        evidence=[{"source": e.source, "summary": e.summary} for e in run.evidence],
        actions=[a.model_dump(mode="json") for a in run.actions],
        attempts=run.attempts,
        rungs=rungs_of(run),
        settings=ctx.settings,
    )
    for change in changes:
        await ctx.audit.append(
            run.run_id,
            "ladder",
            "agent",
            {
                "service": run.service,
                "category": category,
                "operation": change.operation,
                "change": change.change,
                "approved_held": change.approved_held,
            },
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
