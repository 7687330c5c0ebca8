"""settle: a fix must hold through VALIDATE_SETTLE before the run is `resolved`.

The window opened at validate's first healthy probe. It is watched in a few checks; between
them the run parks (an interrupt of kind `settle` with a wake-up time): it holds no worker, and
whichever replica is free when it is due resumes it. Each check probes every target and compares
each container with the baseline: unhealthy now, started again since, or restarted more often
means the fix did not hold. That is a failed attempt: the next one does not repeat what did not
hold (a crash that came back is diagnosed a crash loop), or, with no attempt left, the run
escalates with `did_not_hold`. A fix that held through the window is `resolved`; Alertmanager's
view of the run's alerts, with ALERTMANAGER_URL, is recorded beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from langgraph.types import interrupt

from devops_agent.context import AgentContext
from devops_agent.nodes.validate import check, gives_up, touched
from devops_agent.state import HAPPENED, IncidentState, RunState, Validation, utcnow
from devops_agent.tools.alertmanager_api import still_firing

CHECKS = 3  # checks in a window
SHORTEST_GAP = 0.2  # seconds between two checks, at least


def _changes(baseline: dict[str, list[dict[str, Any]]], now: Validation) -> list[str]:
    """What happened to the containers since the window opened."""
    found: list[str] = []
    for current in now.checks:
        before = {c["name"]: c for c in baseline.get(current["target"], [])}
        if not current["healthy"]:
            found.append(f"{current['target']} is unhealthy again: {current['summary']}")
        for container in current["containers"]:
            old = before.get(container["name"])
            if old is None:
                continue  # a replica that was not there (the plan may scale)
            if container["started_at"] != old["started_at"]:
                found.append(f"{container['name']} was started again within the window")
            elif (container["restart_count"] or 0) > (old["restart_count"] or 0):
                found.append(f"{container['name']} restarted within the window")
    return list(dict.fromkeys(found))


def _attempt(run: RunState, held: bool, why: str) -> dict[str, Any]:
    ops = [
        [a.operation, a.target]
        for a in run.actions
        if a.attempt == run.attempts and a.status in HAPPENED and a.rollback_of is None
    ]
    return {"attempt": run.attempts, "operations": ops, "held": held, "why": why}


async def settle(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    window = run.validation
    assert window is not None and window.settle_until, "validate opens the window"
    until = datetime.fromisoformat(window.settle_until)
    gap = max(ctx.settings.validate_settle / CHECKS, SHORTEST_GAP)
    last = datetime.fromisoformat(window.checked_at or utcnow())
    wake = min(until, last + timedelta(seconds=gap))
    if datetime.now(UTC) < wake:
        # Park until the next check (the run manager releases the run meanwhile).
        interrupt({"kind": "settle", "run_id": run.run_id, "wake_at": wake.isoformat()})
    now = await check(ctx, touched(run))
    changes = _changes(window.baseline, now)
    seen = window.model_copy(update={"checks": now.checks, "checked_at": utcnow()})
    if changes:
        why = "; ".join(changes)
        seen.healthy, seen.held = False, False
        update: IncidentState = {
            "validation": seen.model_dump(mode="json"),
            "tried": [_attempt(run, False, why)],
        }
        if gives_up(run, ctx.settings.max_attempts):
            update["escalation"] = f"the fix did not hold: {why}"
            update["escalation_reason"] = "did_not_hold"
        return update
    if datetime.now(UTC) < until:
        return {"validation": seen.model_dump(mode="json")}  # healthy so far: the next check
    seen.held = True
    if ctx.settings.alertmanager_url:
        firing = await still_firing(
            ctx.settings.alertmanager_url, [a.fingerprint for a in run.alerts if a.fingerprint]
        )
        seen.alerts_cleared = None if firing is None else not firing
    held = f"held through VALIDATE_SETTLE={ctx.settings.validate_settle:g}s"
    return {
        "validation": seen.model_dump(mode="json"),
        "outcome": "resolved",
        "tried": [_attempt(run, True, held)],
    }
