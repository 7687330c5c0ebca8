"""validate: probe the target (and what the plan touched) until healthy or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from devops_agent.context import AgentContext
from devops_agent.state import IncidentState, RunState, Validation


async def _check(ctx: AgentContext, targets: list[dict[str, Any]]) -> Validation:
    results = await asyncio.gather(*(ctx.registry.run("health_check", t) for t in targets))
    checks = [
        {"target": r.target, "healthy": bool(r.ok and r.data.get("healthy")), "summary": r.message}
        for r in results
    ]
    return Validation(healthy=all(c["healthy"] for c in checks), checks=checks)


def touched(run: RunState) -> list[dict[str, Any]]:
    """The incident's target and every target of the plan, each once (with its project)."""
    target, plan = run.target, run.plan
    found = [target.params if target else {"target": run.service}]
    found += [step.named for step in (plan.steps if plan else [])]
    return list({(t["target"], t.get("project")): t for t in found}.values())


async def validate(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    names = touched(run)
    deadline = time.monotonic() + ctx.settings.validate_timeout
    result = await _check(ctx, names)
    while not result.healthy and time.monotonic() < deadline:
        await asyncio.sleep(ctx.validate_interval)
        result = await _check(ctx, names)
    update: IncidentState = {"validation": result.model_dump(mode="json")}
    if result.healthy:
        update["outcome"] = "resolved"
    elif run.attempts >= ctx.settings.max_attempts:
        update["escalation"] = (
            f"still unhealthy after {run.attempts} attempt(s) (MAX_ATTEMPTS="
            f"{ctx.settings.max_attempts}): " + "; ".join(c["summary"] for c in result.checks)
        )
        update["escalation_reason"] = "did_not_hold"
    return update
