"""escalate: record why the agent stopped, and what to tell people.

The notice is kept in the state; it is sent from the outbox, stored with the change that ends
the run (memory/outbox.py), so a process that dies here loses nothing and sends nothing twice
under two ids.
"""

from __future__ import annotations

from devops_agent.context import AgentContext
from devops_agent.notify import escalation_notice
from devops_agent.state import IncidentState, Outcome, RunState


async def escalate(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    approval, plan, diagnosis = run.approval, run.plan, run.diagnosis
    rejected = bool(approval and approval.decision == "reject" and approval.approver != "policy")
    outcome: Outcome = "rejected" if rejected else "escalated"
    reason = run.escalation or (plan.why if plan else "") or "no reason recorded"
    code = run.escalation_reason or ("rejected" if rejected else None)
    category = diagnosis.category if diagnosis else None
    notice = escalation_notice(run.run_id, run.service, outcome, reason, category, code)
    return {"outcome": outcome, "escalation": reason, "escalation_reason": code, "notice": notice}
