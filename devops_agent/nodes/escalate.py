"""escalate: record why the agent stopped and tell people."""

from __future__ import annotations

from devops_agent.context import AgentContext
from devops_agent.state import IncidentState, Outcome, RunState


async def escalate(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    approval, plan, diagnosis = run.approval, run.plan, run.diagnosis
    rejected = bool(approval and approval.decision == "reject" and approval.approver != "policy")
    outcome: Outcome = "rejected" if rejected else "escalated"
    reason = run.escalation or (plan.why if plan else "") or "no reason recorded"
    code = run.escalation_reason or ("rejected" if rejected else None)
    ctx.notifier.send(
        f"[devops-agent] {run.service or 'unknown service'}: {outcome}. {reason}",
        run_id=run.run_id,
        service=run.service,
        outcome=outcome,
        category=diagnosis.category if diagnosis else None,
        reason=code,
    )
    return {"outcome": outcome, "escalation": reason, "escalation_reason": code}
