"""triage: normalise the alerts, resolve the target, decide whether there is anything to do."""

from __future__ import annotations

from typing import Any

from langgraph.config import get_config

from devops_agent.context import AgentContext
from devops_agent.nodes.common import alerts_of, candidate_names, target_dump
from devops_agent.state import IncidentState


def _run_id(state: IncidentState) -> str:
    if state.get("run_id"):
        return str(state["run_id"])
    configurable = get_config().get("configurable", {})
    return str(configurable.get("thread_id") or configurable.get("run_id") or "unknown")


async def triage(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    alerts = alerts_of(state)
    names = candidate_names(alerts)
    update: dict[str, Any] = {
        "run_id": _run_id(state),
        "alerts": [a.model_dump(mode="json") for a in alerts],
        "service": names[0] if names else None,
        "attempts": state.get("attempts", 0),
    }
    if not alerts:
        return {
            **update,
            "triage": {"action": "escalate", "reason": "the run has no alerts"},
            "escalation": "the run has no alerts",
        }
    if all(a.status == "resolved" for a in alerts):
        return {
            **update,
            "triage": {"action": "none", "reason": "every alert is already resolved"},
            "outcome": "superseded",
        }
    target = await ctx.registry.backend.resolve(names)
    if target is None:
        reason = (
            f"unknown target: no {ctx.registry.backend.name} service is named by the labels "
            f"({', '.join(names) or 'none of service, container, container_name, name, job'})"
        )
        return {
            **update,
            "target": None,
            "triage": {"action": "escalate", "reason": reason},
            "escalation": reason,
        }
    update["service"] = target.name
    return {
        **update,
        "target": target_dump(target),
        "triage": {"action": "investigate", "reason": f"{len(alerts)} alert(s) for {target.name}"},
    }


def route_after_triage(state: IncidentState) -> str:
    action = state.get("triage", {}).get("action")
    return {"investigate": "root_cause", "escalate": "escalate"}.get(str(action), "learn")
