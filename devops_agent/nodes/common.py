"""Small helpers the nodes share: reading the state back into models."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from devops_agent.context import AgentContext
from devops_agent.policy import Facts
from devops_agent.reasoning.base import Investigation
from devops_agent.redact import redact_data
from devops_agent.state import ActionRecord, Alert, Evidence, IncidentState, Target
from devops_agent.tools.registry import OPERATIONS

TARGET_LABELS = ("service", "container", "container_name", "name", "job")


def alerts_of(state: IncidentState) -> list[Alert]:
    return [Alert.model_validate(a) for a in state.get("alerts", [])]


def target_of(state: IncidentState) -> Target | None:
    raw = state.get("target")
    return Target.model_validate(raw) if raw else None


def target_dump(target: Target) -> dict[str, Any]:
    """A target as the state keeps it: its labels (the container's own) masked like evidence."""
    return target.model_copy(update={"labels": redact_data(target.labels)}).model_dump(mode="json")


def investigation(state: IncidentState, max_replicas: int, **extra: Any) -> Investigation:
    return Investigation(
        alerts=alerts_of(state),
        target=target_of(state),
        evidence=[Evidence.model_validate(e) for e in state.get("evidence", [])],
        actions=[ActionRecord.model_validate(a) for a in state.get("actions", [])],
        attempts=state.get("attempts", 0),
        max_replicas=max_replicas,
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


async def policy_facts(ctx: AgentContext, services: list[str]) -> Facts:
    """What the policy needs to know from the store, read just before a decision."""
    facts = Facts()
    mutating = {name for name, spec in OPERATIONS.items() if spec.mutating}
    s = ctx.settings
    (
        facts.actions_paused,
        facts.actions_last_hour,
        facts.total_last_hour,
        facts.breaker_open,
    ) = await ctx.store.policy_inputs(
        facts.now - timedelta(hours=1), mutating, services, s.breaker_failures, s.breaker_cooldown
    )
    return facts
