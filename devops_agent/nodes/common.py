"""Small helpers the nodes share: reading the state back into models, and target identities."""

from __future__ import annotations

from typing import Any

from devops_agent.config import Settings
from devops_agent.context import AgentContext
from devops_agent.labels import PROJECT_ALERT_LABELS
from devops_agent.operations import OPERATIONS
from devops_agent.reasoning.base import Investigation
from devops_agent.redact import redact_data
from devops_agent.state import Alert, PlanStep, RunState, Target

TARGET_LABELS = ("service", "container", "container_name", "name", "job")


def target_dump(target: Target) -> dict[str, Any]:
    """A target as the state keeps it: its labels (the container's own) masked like evidence."""
    return target.model_copy(update={"labels": redact_data(target.labels)}).model_dump(mode="json")


def investigation(run: RunState, settings: Settings, **extra: Any) -> Investigation:
    return Investigation(
        alerts=run.alerts,
        target=run.target,
        evidence=run.evidence,
        actions=run.actions,
        attempts=run.attempts,
        max_replicas=settings.max_replicas,
        crash_loop_window=settings.crash_loop_window,
        tried=run.tried,
        plan=run.plan,
        **extra,
    )


def candidate_names(alerts: list[Alert]) -> list[str]:
    """The label values that may name the target, in CONTRACT.md's order, firing alerts first."""
    names: list[str] = []
    for alert in sorted(alerts, key=lambda a: a.status != "firing"):
        for label in TARGET_LABELS:
            value = alert.labels.get(label, "").strip()
            if value and value not in names:
                names.append(value)
    return names


def project_of(alerts: list[Alert]) -> str | None:
    """The Compose project an alert names (label `project` or `compose_project`), if any."""
    for alert in sorted(alerts, key=lambda a: a.status != "firing"):
        for label in PROJECT_ALERT_LABELS:
            value = alert.labels.get(label, "").strip()
            if value:
                return value
    return None


def identity(target: Target | None, name: str) -> str:
    """A target's identity for limits and locks; a name the backend did not resolve keeps one
    of its own, which no resolved target shares."""
    return target.key if target and target.key else f"unresolved:{name}"


async def target_keys(ctx: AgentContext, steps: list[PlanStep]) -> dict[str, str]:
    """The identity of each mutating step's target (step target name -> key)."""
    keys: dict[str, str] = {}
    for step in steps:
        if not OPERATIONS.get(step.operation, OPERATIONS["health_check"]).mutating:
            continue
        if step.target not in keys:
            found = await ctx.registry.backend.resolve([step.target], step.params.get("project"))
            keys[step.target] = identity(found if isinstance(found, Target) else None, step.target)
    return keys
