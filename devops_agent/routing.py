"""Every conditional edge of the graph, in one place, each routing on an explicit field.

Each function's return type is the Literal of the nodes it may route to; `graph.py` declares
the edges from those Literals (`targets`), and a test checks the compiled graph against them.
No route reads human-readable text: an escalation is routed on its reason code.
"""

from __future__ import annotations

from typing import Literal, get_args, get_type_hints

from devops_agent.state import IncidentState

AfterTriage = Literal["root_cause", "escalate", "learn"]
AfterPlan = Literal["approve", "escalate", "learn"]
AfterApprove = Literal["await_approval", "execute", "escalate"]
AfterDecision = Literal["execute", "escalate"]
AfterExecute = Literal["validate", "escalate", "await_approval", "learn"]
AfterValidate = Literal["settle", "learn", "root_cause", "rollback"]
AfterSettle = Literal["settle", "learn", "root_cause", "rollback"]


def after_triage(state: IncidentState) -> AfterTriage:
    """Investigate a resolved target; escalate an unknown or ambiguous one; learn when every
    alert was already resolved."""
    action = (state.get("triage") or {}).get("action")
    if action == "investigate":
        return "root_cause"
    return "escalate" if action == "escalate" else "learn"


def after_plan(state: IncidentState) -> AfterPlan:
    action = (state.get("plan") or {}).get("action")
    if action == "remediate":
        return "approve"
    return "escalate" if action == "escalate" else "learn"


def after_approve(state: IncidentState) -> AfterApprove:
    if state.get("approval_request"):
        return "await_approval"
    return after_decision(state)


def after_decision(state: IncidentState) -> AfterDecision:
    decision = (state.get("approval") or {}).get("decision")
    return "execute" if decision == "approve" else "escalate"


def after_execute(state: IncidentState) -> AfterExecute:
    """A step that must wait for a person; a run that joined the one acting on its target; a
    refusal, dry run or unknown outcome (a reason code); else validate what was done."""
    if state.get("approval_request"):
        return "await_approval"
    if state.get("outcome") == "superseded":
        return "learn"
    return "escalate" if state.get("escalation_reason") else "validate"


def after_validate(state: IncidentState) -> AfterValidate:
    """Healthy: watch the settle window (or learn, without one). Attempts used up (a reason
    code set): roll back, then escalate. Else re-diagnose."""
    validation = state.get("validation") or {}
    if validation.get("healthy"):
        return "settle" if validation.get("settle_until") else "learn"
    return "rollback" if state.get("escalation_reason") else "root_cause"


def after_settle(state: IncidentState) -> AfterSettle:
    """Held through the window: learn. Not held: as an unhealthy validation. Else: the next
    check of the window."""
    held = (state.get("validation") or {}).get("held")
    if held is None:
        return "settle"
    if held:
        return "learn"
    return "rollback" if state.get("escalation_reason") else "root_cause"


def targets(route: object) -> list[str]:
    """The nodes a routing function may return, from its Literal return type."""
    return list(get_args(get_type_hints(route)["return"]))
