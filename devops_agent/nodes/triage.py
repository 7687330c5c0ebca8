"""triage: normalise the alerts, resolve the target, decide whether there is anything to do."""

from __future__ import annotations

from langgraph.config import get_config

from devops_agent.context import AgentContext
from devops_agent.nodes.common import candidate_names, project_of, target_dump
from devops_agent.state import Ambiguity, IncidentState, RunState, Target, Unreachable


def _run_id(run: RunState) -> str:
    if run.run_id:
        return run.run_id
    configurable = get_config().get("configurable", {})
    return str(configurable.get("thread_id") or configurable.get("run_id") or "unknown")


async def triage(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    alerts = run.alerts
    names = candidate_names(alerts)
    update: IncidentState = {
        "run_id": _run_id(run),
        "alerts": [a.model_dump(mode="json") for a in alerts],
        "service": names[0] if names else None,
        "attempts": run.attempts,
    }
    if not alerts:
        return {
            **update,
            "triage": {"action": "escalate", "reason": "the run has no alerts"},
            "escalation": "the run has no alerts",
            "escalation_reason": "unknown_target",
        }
    if all(a.status == "resolved" for a in alerts):
        return {
            **update,
            "triage": {"action": "none", "reason": "every alert is already resolved"},
            "outcome": "superseded",
        }
    target = await ctx.registry.backend.resolve(names, project_of(alerts))
    if not isinstance(target, Target):
        if isinstance(target, Ambiguity):
            code, reason = "ambiguous_target", f"ambiguous target: {target.message}"
        elif isinstance(target, Unreachable):
            code, reason = "backend_unreachable", f"cannot find the target: {target.message}"
        else:
            code = "unknown_target"
            reason = (
                f"unknown target: no {ctx.registry.backend.name} service is named by the labels "
                f"({', '.join(names) or 'none of service, container, container_name, name, job'})"
            )
        return {
            **update,
            "target": None,
            "triage": {"action": "escalate", "reason": reason},
            "escalation": reason,
            "escalation_reason": code,
        }
    return {
        **update,
        "service": target.name,
        "target": target_dump(target),
        "triage": {"action": "investigate", "reason": f"{len(alerts)} alert(s) for {target.name}"},
    }
