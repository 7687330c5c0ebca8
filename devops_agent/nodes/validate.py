"""validate: probe the target (and what the plan touched) until healthy or a deadline passes.

The first healthy probe is not the end: with VALIDATE_SETTLE, it opens the window the fix must
hold through (nodes/settle.py), from a baseline of each container's start time and restart
count. Without it (0), healthy is resolved.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from devops_agent.context import AgentContext
from devops_agent.state import IncidentState, RunState, Validation, utcnow
from devops_agent.tools.registry import OperationResult


def check_of(result: OperationResult) -> dict[str, Any]:
    """One target's check: healthy, a summary, and what a later check compares against."""
    containers = result.data.get("containers") or [] if result.ok else []
    return {
        "target": result.target,
        "healthy": bool(result.ok and result.data.get("healthy")),
        "summary": result.message,
        "containers": [
            {
                "name": c.get("name"),
                "started_at": c.get("started_at"),
                "restart_count": c.get("restart_count", 0),
            }
            for c in containers
        ],
    }


async def check(ctx: AgentContext, targets: list[dict[str, Any]]) -> Validation:
    results = await asyncio.gather(*(ctx.registry.run("health_check", t) for t in targets))
    checks = [check_of(r) for r in results]
    return Validation(healthy=all(c["healthy"] for c in checks), checks=checks)


def touched(run: RunState) -> list[dict[str, Any]]:
    """The incident's target and every target of the plan, each once (with its project)."""
    target, plan = run.target, run.plan
    found = [target.params if target else {"target": run.service}]
    found += [step.named for step in (plan.steps if plan else [])]
    return list({(t["target"], t.get("project")): t for t in found}.values())


async def settled_health(ctx: AgentContext, run: RunState) -> Validation:
    """The run's own target, probed until healthy or VALIDATE_TIMEOUT (what a joined run
    records of its service, once the run that handles the fault acted)."""
    target = run.target
    names = [target.params if target else {"target": run.service}]
    deadline = time.monotonic() + ctx.settings.validate_timeout
    seen = await check(ctx, names)
    while not seen.healthy and time.monotonic() < deadline:
        await asyncio.sleep(ctx.validate_interval)
        seen = await check(ctx, names)
    return seen


async def validate(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    names = touched(run)
    deadline = time.monotonic() + ctx.settings.validate_timeout
    result = await check(ctx, names)
    while not result.healthy and time.monotonic() < deadline:
        await asyncio.sleep(ctx.validate_interval)
        result = await check(ctx, names)
    update: IncidentState = {}
    if result.healthy and ctx.settings.validate_settle > 0:
        until = datetime.now(UTC) + timedelta(seconds=ctx.settings.validate_settle)
        result.settle_until = until.isoformat(timespec="microseconds")
        result.checked_at = utcnow()
        result.baseline = {c["target"]: c["containers"] for c in result.checks}
    elif result.healthy:
        update["outcome"] = "resolved"
    elif run.attempts >= ctx.settings.max_attempts:
        update["escalation"] = (
            f"still unhealthy after {run.attempts} attempt(s) (MAX_ATTEMPTS="
            f"{ctx.settings.max_attempts}): " + "; ".join(c["summary"] for c in result.checks)
        )
        update["escalation_reason"] = "did_not_hold"
    update["validation"] = result.model_dump(mode="json")
    return update
