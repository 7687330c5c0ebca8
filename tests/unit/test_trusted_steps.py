"""The execute node against a real SQLite ledger: what a resume finds, and the step-time policy.

The fake backend stands in for the infrastructure (tests/integration and tests/server do the
same on a real engine)."""

from __future__ import annotations

from typing import Any

import pytest

from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.nodes.approve import approve
from devops_agent.nodes.execute import execute
from devops_agent.nodes.rollback import rollback
from devops_agent.nodes.root_cause import root_cause
from devops_agent.routing import after_execute
from devops_agent.tools.fake import FakeBackend, FakeService

PERSON = {"decision": "approve", "approver": "ana"}


@pytest.fixture
async def ctx(tmp_path):
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/agent.db",
        data_dir=tmp_path,
        safety_mode=False,
        auto_approve_max_risk="medium",
        validate_timeout=0.1,
        validate_settle=0,
    )
    backend = FakeBackend(
        [
            FakeService("web", status="exited", exit_code=2),
            FakeService("api", compose=True),
            FakeService("cache"),
            FakeService("queue", status="exited", exit_code=1),
        ]
    )
    context = AgentContext.from_settings(settings, backend=backend)
    yield context
    await context.store.close()


def _plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"action": "remediate", "steps": list(steps), "confidence": 0.95}


def _restart(target: str) -> dict[str, Any]:
    return {"operation": "restart_service", "target": target, "params": {}, "risk": "medium"}


async def test_a_failed_step_is_not_skipped_into_success_on_resume(ctx: AgentContext) -> None:
    """Step 0 failed; the node runs again (as after a resume): step 0 comes back failed, and
    step 1 still does not run."""
    state: dict[str, Any] = {
        "run_id": "r",
        "plan": _plan(_restart("ghost"), _restart("web")),
        "approval": PERSON,
    }
    first = await execute(state, ctx)  # type: ignore[arg-type]
    again = await execute(state, ctx)  # type: ignore[arg-type]
    assert [a["status"] for a in first["actions"]] == ["failed"]
    assert [a["status"] for a in again["actions"]] == ["failed"]
    assert ctx.registry.backend.services["web"].restarts == 0  # type: ignore[attr-defined]
    assert after_execute({**state, **again}) == "validate"  # type: ignore[typeddict-item]


async def test_a_refused_step_stays_refused_on_resume(ctx: AgentContext) -> None:
    ctx.settings.max_actions_per_service_per_hour = 0
    state: dict[str, Any] = {"run_id": "r", "plan": _plan(_restart("web")), "approval": PERSON}
    first = await execute(state, ctx)  # type: ignore[arg-type]
    again = await execute(state, ctx)  # type: ignore[arg-type]
    for update in (first, again):
        assert [(a["status"], a["reason"]) for a in update["actions"]] == [
            ("refused", "rate_limit_service")
        ]
        assert update["escalation_reason"] == "rate_limit_service"
    assert ctx.registry.backend.services["web"].restarts == 0  # type: ignore[attr-defined]


async def test_a_scale_that_happened_stays_visible_to_rollback_after_a_resume(
    ctx: AgentContext,
) -> None:
    scale = {"operation": "scale_service", "target": "api", "params": {"replicas": 2}}
    state: dict[str, Any] = {"run_id": "r", "plan": _plan(scale), "approval": PERSON}
    await execute(state, ctx)  # type: ignore[arg-type]
    again = await execute(state, ctx)  # type: ignore[arg-type]  # re-run: the first update lost
    (skipped,) = again["actions"]
    assert skipped["status"] == "skipped" and skipped["snapshot"]["replicas"] == 1
    undone = await rollback({"run_id": "r", "actions": again["actions"]}, ctx)  # type: ignore[typeddict-item]
    assert [(a["operation"], a["status"]) for a in undone["actions"]] == [
        ("scale_service", "succeeded")
    ]
    assert ctx.registry.backend.services["api"].replicas == 1  # type: ignore[attr-defined]


async def test_the_kill_switch_is_checked_again_right_before_each_step(ctx: AgentContext) -> None:
    """The policy approved the plan by itself; the kill switch went on before execute: the step
    asks a person (kill_switch) instead of running. A person's approval then runs it."""
    state: dict[str, Any] = {"run_id": "r", "service": "web", "plan": _plan(_restart("web"))}
    approved = await approve(state, ctx)  # type: ignore[arg-type]
    assert approved["approval"]["approver"] == "policy"
    await ctx.store.set_control("actions_paused", "true", by="ops")
    state.update(approved)
    held = await execute(state, ctx)  # type: ignore[arg-type]
    assert held["approval_request"]["reason"] == "kill_switch" and held["actions"] == []
    assert after_execute({**state, **held}) == "await_approval"  # type: ignore[typeddict-item]
    assert ctx.registry.backend.services["web"].restarts == 0  # type: ignore[attr-defined]

    state.update({**held, "approval": PERSON})
    done = await execute(state, ctx)  # type: ignore[arg-type]
    assert [a["status"] for a in done["actions"]] == ["succeeded"]
    assert ctx.registry.backend.services["web"].restarts == 1  # type: ignore[attr-defined]


async def test_names_in_log_lines_count_only_when_they_are_failing_services(
    ctx: AgentContext,
) -> None:
    """Application logs are untrusted: `a` (from "to a database") and a healthy service that a
    line names are no dependency; a failing service that a line names exactly is one."""
    web = ctx.registry.backend.services["web"]  # type: ignore[attr-defined]
    web.status, web.probe_status = "running", 503
    web.logs = [
        "error: failed to connect to a database",
        "error: connection refused to cache:6379",
        "error: upstream queue timed out",
    ]
    state: dict[str, Any] = {"run_id": "r", "target": {"name": "web", "kind": "container"}}
    update = await root_cause(state, ctx)  # type: ignore[arg-type]
    deps = [e["target"] for e in update["evidence"] if e["source"] == "dependency"]
    assert deps == ["queue"]
