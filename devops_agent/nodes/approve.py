"""approve: the policy decides to act, to ask a person (interrupt), or to refuse.

This node does nothing else: LangGraph re-runs a node from its start when it resumes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from langgraph.types import interrupt

from devops_agent.context import AgentContext
from devops_agent.nodes.common import policy_facts
from devops_agent.policy import decide
from devops_agent.state import Approval, IncidentState, Plan


def approval_request(state: IncidentState, plan: Plan, why: str, timeout: int) -> dict[str, Any]:
    """What a person sees: the diagnosis, the steps, why approval is needed, and a deadline."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    return {
        "run_id": state.get("run_id"),
        "service": state.get("service"),
        "diagnosis": state.get("diagnosis"),
        "plan": plan.model_dump(mode="json"),
        "why": why,
        "deadline": deadline.isoformat(),
        "answer": {
            "decision": "approve | reject",
            "approver": "who decides",
            "comment": "optional",
        },
    }


def parse_decision(answer: Any) -> Approval:
    """A resume value as an Approval; anything unreadable counts as a rejection."""
    if isinstance(answer, str):
        answer = {"decision": answer}
    if not isinstance(answer, dict) or answer.get("decision") not in (
        "approve",
        "reject",
        "expired",
    ):
        return Approval(
            decision="reject", approver="", comment=f"unreadable answer: {str(answer)[:200]}"
        )
    return Approval(
        decision=answer["decision"],
        approver=str(answer.get("approver") or "")[:200],
        comment=str(answer.get("comment") or "")[:2000],
    )


async def approve(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    plan = Plan.model_validate(state["plan"])
    verdict = decide(
        plan, ctx.settings, ctx.policy, await policy_facts(ctx, [s.target for s in plan.steps])
    )
    update: dict[str, Any]
    if verdict.decision == "refuse":
        approval = Approval(
            decision="reject", approver="policy", comment=verdict.why, policy=verdict.policy
        )
        update = {"escalation": f"the policy refused the plan: {verdict.why}"}
    elif verdict.decision == "auto":
        approval = Approval(
            decision="approve", approver="policy", comment=verdict.why, policy=verdict.policy
        )
        update = {}
    else:
        answer = interrupt(
            approval_request(state, plan, verdict.why, ctx.settings.approval_timeout)
        )
        approval = parse_decision(answer)
        approval.policy = verdict.policy
        update = {}
        if approval.decision == "reject":
            who = approval.approver or "a person"
            update["escalation"] = f"rejected by {who}: {approval.comment}".rstrip(": ")
        elif approval.decision == "expired":
            update["escalation"] = (
                f"no decision within APPROVAL_TIMEOUT={ctx.settings.approval_timeout}s: expired"
            )
    await ctx.audit.append(
        str(state.get("run_id")),
        "approval",
        approval.approver or "unknown",
        {**approval.model_dump(mode="json"), "why": verdict.why},
    )
    return {**update, "approval": approval.model_dump(mode="json")}


def route_after_approve(state: IncidentState) -> str:
    decision = (state.get("approval") or {}).get("decision")
    return "execute" if decision == "approve" else "escalate"
