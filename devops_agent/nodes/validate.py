"""validate: probe the target (and what the plan touched) until healthy or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from devops_agent.context import AgentContext
from devops_agent.state import IncidentState, Validation


async def _check(ctx: AgentContext, names: list[str]) -> Validation:
    results = await asyncio.gather(
        *(ctx.registry.run("health_check", {"target": n}) for n in names)
    )
    checks = [
        {"target": r.target, "healthy": bool(r.ok and r.data.get("healthy")), "summary": r.message}
        for r in results
    ]
    return Validation(healthy=all(c["healthy"] for c in checks), checks=checks)


async def validate(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    plan = state.get("plan") or {}
    names = list(
        dict.fromkeys([str(state.get("service"))] + [s["target"] for s in plan.get("steps", [])])
    )
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
    return update


def route_after_validate(state: IncidentState) -> str:
    """Healthy: learn. Attempts used up (validate set the escalation): roll back, then escalate.
    Else re-diagnose."""
    if (state.get("validation") or {}).get("healthy"):
        return "learn"
    return "rollback" if state.get("escalation") else "root_cause"
