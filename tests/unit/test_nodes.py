"""Each node on its own, with the fake backend and an in-memory store."""

from __future__ import annotations

from typing import Any

import pytest

from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.nodes.approve import parse_decision
from devops_agent.nodes.common import candidate_names
from devops_agent.nodes.execute import execute
from devops_agent.nodes.root_cause import names_in, root_cause
from devops_agent.nodes.triage import triage
from devops_agent.nodes.validate import validate
from devops_agent.routing import after_approve, after_triage, after_validate
from devops_agent.state import Alert
from devops_agent.tools.fake import FakeBackend, FakeService


@pytest.fixture
async def ctx():
    settings = load_settings(database_url="memory://", validate_timeout=0.1, validate_settle=0)
    backend = FakeBackend(
        [FakeService("web", status="exited", exit_code=2), FakeService("db", status="exited")]
    )
    context = AgentContext.from_settings(settings, backend=backend)
    context.validate_interval = 0.01
    yield context
    await context.store.close()


def test_target_label_order_follows_the_contract() -> None:
    alert = Alert(
        labels={"job": "j", "name": "n", "container_name": "cn", "container": "c", "service": "s"}
    )
    assert candidate_names([alert]) == ["s", "c", "cn", "n", "j"]


async def test_triage_resolves_the_first_label_that_names_a_service(ctx: AgentContext) -> None:
    alert = Alert(labels={"service": "ghost", "container": "web"}).model_dump()
    update = await triage({"run_id": "r", "alerts": [alert]}, ctx)
    assert update["target"]["name"] == "web" and after_triage(update) == "root_cause"  # type: ignore[arg-type]


def test_names_in_error_lines() -> None:
    lines = [
        "error: connection refused to db-3f2a:5432",
        "dial tcp: lookup redis-cache: no such host; upstream cart-svc timed out",
        "GET 10.0.0.5:8080 failed",
    ]
    assert names_in(lines) == ["db-3f2a", "cart-svc"]  # IP addresses are not service names


async def test_root_cause_finds_a_dependency_from_the_logs(ctx: AgentContext) -> None:
    web = ctx.registry.backend.services["web"]  # type: ignore[attr-defined]
    web.status, web.logs = "running", ["error: connection refused to db:5432"]
    web.probe_status = 503
    state: dict[str, Any] = {
        "run_id": "r",
        "target": {"name": "web", "kind": "container"},
        "alerts": [],
    }
    update = await root_cause(state, ctx)  # type: ignore[arg-type]
    assert update["diagnosis"]["category"] == "dependency_failure"
    assert [e["target"] for e in update["evidence"] if e["source"] == "dependency"] == ["db"]


def test_unreadable_decisions_count_as_rejections() -> None:
    assert parse_decision({"decision": "approve", "approver": "ana"}).decision == "approve"
    assert parse_decision("reject").decision == "reject"
    assert parse_decision({"decision": "rm -rf /"}).decision == "reject"
    assert parse_decision(None).decision == "reject"
    assert after_approve({"approval": {"decision": "expired"}}) == "escalate"  # type: ignore[typeddict-item]


async def test_execute_skips_steps_already_in_the_ledger(ctx: AgentContext) -> None:
    plan = {
        "action": "remediate",
        "steps": [{"operation": "restart_service", "target": "web", "params": {}}],
    }
    approval = {"decision": "approve", "approver": "ana"}
    state: dict[str, Any] = {"run_id": "r", "plan": plan, "attempts": 0, "approval": approval}
    first = await execute(state, ctx)  # type: ignore[arg-type]
    again = await execute(state, ctx)  # the same attempt re-run, as after a resume
    assert [a["status"] for a in first["actions"]] == ["succeeded"]
    assert [a["status"] for a in again["actions"]] == ["skipped"]
    assert ctx.registry.backend.services["web"].restarts == 1  # type: ignore[attr-defined]


async def test_execute_stops_at_a_failed_step(ctx: AgentContext) -> None:
    steps = [
        {"operation": "restart_service", "target": "ghost", "params": {}},
        {"operation": "restart_service", "target": "web", "params": {}},
    ]
    approval = {"decision": "approve", "approver": "ana"}
    state = {"run_id": "r", "plan": {"action": "remediate", "steps": steps}, "approval": approval}
    update = await execute(state, ctx)  # type: ignore[arg-type]
    assert [(a["target"], a["status"]) for a in update["actions"]] == [("ghost", "failed")]


async def test_validate_routes_by_health_and_attempts(ctx: AgentContext) -> None:
    plan = {"action": "remediate", "steps": []}
    state: dict[str, Any] = {"service": "web", "plan": plan, "attempts": 1}
    unhealthy = await validate(state, ctx)  # type: ignore[arg-type]
    assert unhealthy["validation"]["healthy"] is False
    assert after_validate({**state, **unhealthy}) == "root_cause"  # type: ignore[typeddict-item]
    state["attempts"] = 2
    last = await validate(state, ctx)  # type: ignore[arg-type]
    assert (
        after_validate({**state, **last}) == "rollback" and "MAX_ATTEMPTS=2" in last["escalation"]
    )  # type: ignore[typeddict-item]
    ctx.registry.backend.services["web"].status = "running"  # type: ignore[attr-defined]
    healthy = await validate(state, ctx)  # type: ignore[arg-type]
    assert healthy["outcome"] == "resolved" and after_validate({**state, **healthy}) == "learn"  # type: ignore[typeddict-item]
