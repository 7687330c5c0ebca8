"""validate: probe the target (and what the plan touched) until healthy or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from devops_agent.context import AgentContext
from devops_agent.nodes.common import target_of
from devops_agent.state import IncidentState, Validation


async def _check(ctx: AgentContext, targets: list[dict[str, Any]]) -> Validation:
    results = await asyncio.gather(*(ctx.registry.run("health_check", t) for t in targets))
    checks = [
        {"target": r.target, "healthy": bool(r.ok and r.data.get("healthy")), "summary": r.message}
        for r in results
    ]
    return Validation(healthy=all(c["healthy"] for c in checks), checks=checks)


async def validate(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    plan = state.get("plan") or {}
    target = target_of(state)
    touched = [target.params if target else {"target": str(state.get("service"))}]
    for step in plan.get("steps", []):
        params = step.get("params") or {}
        touched.append(
            {
                k: v
                for k, v in {**params, "target": step["target"]}.items()
                if k in ("target", "project")
            }
        )
    names = list({(t["target"], t.get("project")): t for t in touched}.values())
    deadline = time.monotonic() + ctx.settings.validate_timeout
    result = await _check(ctx, names)
    while not result.healthy and time.monotonic() < deadline:
        await asyncio.sleep(ctx.validate_interval)
        result = await _check(ctx, names)
    update: dict[str, Any] = {"validation": result.model_dump(mode="json")}
    if result.healthy:
        update["outcome"] = "resolved"
    elif state.get("attempts", 0) >= ctx.settings.max_attempts:
        update["escalation"] = (
            f"still unhealthy after {state.get('attempts')} attempt(s) (MAX_ATTEMPTS="
            f"{ctx.settings.max_attempts}): " + "; ".join(c["summary"] for c in result.checks)
        )
        update["escalation_reason"] = "did_not_hold"
    return update


def route_after_validate(state: IncidentState) -> str:
    """Healthy: learn. Attempts used up (validate set the escalation): roll back, then escalate.
    Else re-diagnose."""
    if (state.get("validation") or {}).get("healthy"):
        return "learn"
    return "rollback" if state.get("escalation_reason") else "root_cause"
