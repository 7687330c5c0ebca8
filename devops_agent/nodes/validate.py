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
from devops_agent.nodes.criteria import unmet
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


async def _phase_check(
    ctx: AgentContext, run: RunState, names: list[dict[str, Any]], success: dict[str, Any]
) -> Validation:
    """Healthy, and the workflow phase's other criteria met."""
    result = await check(ctx, names)
    if result.healthy:
        missing = await unmet(ctx, run.target, success)
        if missing:
            result.healthy = False
            result.checks.append(
                {
                    "target": run.service,
                    "healthy": False,
                    "summary": "; ".join(missing),
                    "containers": [],
                }
            )
    return result


def gives_up(run: RunState, max_attempts: int) -> bool:
    """Whether a failed attempt ends the run: attempts used up, or the workflow phase says so."""
    plan = run.plan
    return run.attempts >= max_attempts or bool(
        plan and plan.on_failure in ("rollback", "escalate")
    )


async def validate(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    names = touched(run)
    success = run.plan.success if run.plan else {}
    within = float(success.get("healthy_within") or ctx.settings.validate_timeout)
    deadline = time.monotonic() + within
    result = await _phase_check(ctx, run, names, success)
    while not result.healthy and time.monotonic() < deadline:
        await asyncio.sleep(ctx.validate_interval)
        result = await _phase_check(ctx, run, names, success)
    update: IncidentState = {}
    if result.healthy and ctx.settings.validate_settle > 0:
        until = datetime.now(UTC) + timedelta(seconds=ctx.settings.validate_settle)
        result.settle_until = until.isoformat(timespec="microseconds")
        result.checked_at = utcnow()
        result.baseline = {c["target"]: c["containers"] for c in result.checks}
    elif result.healthy:
        update["outcome"] = "resolved"
    elif gives_up(run, ctx.settings.max_attempts):
        update["escalation"] = (
            f"still unhealthy after {run.attempts} attempt(s) (MAX_ATTEMPTS="
            f"{ctx.settings.max_attempts}, the phase's next: {run.plan.on_failure if run.plan else 'next'}): "
            + "; ".join(c["summary"] for c in result.checks)
        )
        update["escalation_reason"] = "did_not_hold"
    update["validation"] = result.model_dump(mode="json")
    return update
