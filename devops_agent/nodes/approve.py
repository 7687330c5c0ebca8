"""approve and await_approval: the policy decides; a person answers when it asks for one.

`approve` runs the policy once and records its verdict: act, refuse, or ask a person (then it
stores the approval request in the state). `await_approval` does only `interrupt()` with that
stored request. The split matters because LangGraph re-runs a node from its start when it
resumes: if the policy ran again on resume, a change of settings (another replica, a restart
with SAFETY_MODE off, the kill switch released) could turn the verdict into "auto" and skip the
interrupt, so a person's "reject" would be ignored and the plan would run. The policy judges
every step once more when it runs (execute), against the facts of that moment.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import interrupt

from devops_agent.context import AgentContext
from devops_agent.nodes.alternatives import alternatives, learning
from devops_agent.nodes.common import target_keys
from devops_agent.nodes.requests import approval_request
from devops_agent.policy import decide
from devops_agent.state import Approval, IncidentState, Plan, RunState

AUTO_WHY = (
    "it may run by itself (within SAFETY_MODE, AUTO_APPROVE_MAX_RISK and CONFIDENCE_THRESHOLD)"
)


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
        request_id=str(answer.get("request_id") or "")[:64],
        override=answer.get("override") if isinstance(answer.get("override"), dict) else None,
    )


async def approve(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    plan, run_id, target = run.plan, run.run_id, run.target
    assert plan is not None, "plan routes only remediations here"
    keys = await target_keys(ctx, plan.steps)
    facts = await ctx.store.policy_facts(run_id, keys, ctx.settings, run.category)
    replicas = {target.name: len(target.containers)} if target else None
    verdict = decide(plan, ctx.settings, ctx.policy, facts, replicas_before=replicas)
    plan.requires_approval = verdict.decision != "auto"
    plan.why = f"{plan.why} Policy: {verdict.why or AUTO_WHY}."
    judged: IncidentState = {"plan": plan.model_dump(mode="json")}
    # Alerts that joined the run since it started (or resolved) reach the graph before it acts.
    joined = await ctx.store.run_alerts(run_id)
    if joined:
        judged["alerts"] = [a.model_dump(mode="json") for a in joined]
    reasons = [f.as_dict() for f in verdict.findings]
    if verdict.decision == "approval":
        history = await ctx.store.history(run.service)
        request = approval_request(
            state,
            plan,
            verdict.findings,
            policy=verdict.policy,
            timeout=ctx.settings.approval_timeout,
            attempt=run.attempts + 1,
            alternatives=alternatives(run, plan, ctx, history),
            learning=learning(run, plan, history),
        )
        await ctx.audit.append(
            run_id,
            "approval_request",
            "policy",
            {
                "why": verdict.why,
                "reason": verdict.reason,
                "reasons": reasons,
                "policy": verdict.policy,
            },
        )
        return {**judged, "approval": None, "approval_request": request}
    update: IncidentState = {}
    if verdict.decision == "refuse":
        approval = Approval(
            decision="reject", approver="policy", comment=verdict.why, policy=verdict.policy
        )
        update = {
            "escalation": f"the policy refused the plan: {verdict.why}",
            "escalation_reason": verdict.reason,
        }
    else:
        approval = Approval(
            decision="approve",
            approver="policy",
            comment=verdict.why or AUTO_WHY,
            policy=verdict.policy,
        )
    await ctx.audit.append(
        run_id,
        "approval",
        "policy",
        {**approval.model_dump(mode="json"), "why": verdict.why, "reasons": reasons},
    )
    return {
        **judged,
        **update,
        "approval": approval.model_dump(mode="json"),
        "approval_request": None,
    }


async def await_approval(state: IncidentState, ctx: AgentContext) -> IncidentState:
    """Wait for a person. Nothing but the interrupt happens before the answer, by design."""
    run = RunState(state)
    request = run.approval_request
    approval = parse_decision(interrupt(request))
    if ctx.decisions_from == "studio":  # LangGraph Studio: no login, a development tool
        approval.approver = f"studio:{approval.approver or 'unknown'}"[:200]
    approval.policy = str(request.get("policy", ""))
    approval.request_id = str(request.get("request_id") or approval.request_id)
    update: IncidentState = {
        "approval": approval.model_dump(mode="json"),
        "approval_request": None,
    }
    if approval.decision == "approve" and approval.override:
        # An alternative of the request, validated when chosen (devops_agent/approvals.py); the
        # policy judges each of its steps again when it runs, like any plan's.
        chosen = Plan.model_validate(approval.override.get("plan") or {})
        chosen.requires_approval = True
        update["plan"] = chosen.model_dump(mode="json")
    if approval.decision == "reject":
        who = approval.approver or "a person"
        update["escalation"] = f"rejected by {who}: {approval.comment}".rstrip(": ")
        update["escalation_reason"] = "rejected"
    elif approval.decision == "expired":
        update["escalation"] = (
            f"no decision within APPROVAL_TIMEOUT={ctx.settings.approval_timeout}s: expired"
        )
        update["escalation_reason"] = "expired"
    await ctx.audit.append(
        run.run_id,
        "approval",
        approval.approver or "unknown",
        {**approval.model_dump(mode="json"), "why": request.get("why", "")},
    )
    return update
