"""escalate: record why the agent stopped and tell people."""

from __future__ import annotations

from typing import Any

from devops_agent.context import AgentContext
from devops_agent.state import IncidentState


async def escalate(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    approval = state.get("approval") or {}
    rejected = approval.get("decision") == "reject" and approval.get("approver") != "policy"
    outcome = "rejected" if rejected else "escalated"
    reason = state.get("escalation") or (state.get("plan") or {}).get("why") or "no reason recorded"
    diagnosis = state.get("diagnosis") or {}
    ctx.notifier.send(
        f"[devops-agent] {state.get('service') or 'unknown service'}: {outcome}. {reason}",
        run_id=state.get("run_id"),
        service=state.get("service"),
        outcome=outcome,
        category=diagnosis.get("category"),
        reason=state.get("escalation_reason"),
    )
    code = state.get("escalation_reason") or ("rejected" if rejected else None)
    return {"outcome": outcome, "escalation": reason, "escalation_reason": code}
