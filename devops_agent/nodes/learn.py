"""learn: store the incident with its evidence, actions and outcome, and count what worked."""

from __future__ import annotations

from typing import Any

from devops_agent.context import AgentContext
from devops_agent.state import IncidentState


async def learn(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    outcome = state.get("outcome") or "escalated"
    diagnosis = state.get("diagnosis") or {}
    await ctx.store.record_incident(
        run_id=str(state.get("run_id")),
        service=str(state.get("service") or ""),
        category=str(diagnosis.get("category") or "unknown"),
        root_cause=str(diagnosis.get("root_cause") or state.get("escalation") or ""),
        confidence=float(diagnosis.get("confidence") or 0.0),
        outcome=outcome,
        evidence=[
            {"source": e["source"], "summary": e["summary"]} for e in state.get("evidence", [])
        ],
        actions=list(state.get("actions", [])),
        attempts=state.get("attempts", 0),
    )
    await ctx.audit.append(
        str(state.get("run_id")),
        "outcome",
        "agent",
        {
            "outcome": outcome,
            "escalation": state.get("escalation"),
            "reason": state.get("escalation_reason"),
            "handled_by": state.get("handled_by"),
            "attempts": state.get("attempts", 0),
        },
    )
    return {"outcome": outcome}
