"""The whole graph on the in-process fake backend: routing, approval, the re-diagnose loop, learning."""

from __future__ import annotations

from typing import Any

from devops_agent.context import AgentContext
from devops_agent.runner import Agent, open_agent
from devops_agent.state import Alert
from devops_agent.tools.fake import FakeService
from tests.support.factories import alert, fake_context

AUTONOMOUS = {"safety_mode": False, "auto_approve_max_risk": "medium"}


def _ctx(tmp_path, *services: FakeService, **settings: Any) -> AgentContext:
    return fake_context(tmp_path, *services, **settings)


def _alert(service: str, status: str = "firing", fingerprint: str = "f1") -> Alert:
    return alert(service, fingerprint, status)


async def _run(
    agent: Agent, run_id: str, alerts: list[Alert] | None = None, resume: Any = None
) -> list[str]:
    return [node async for node, _ in agent.stream(run_id, alerts, resume)]


async def test_crash_is_restarted_and_resolved(tmp_path) -> None:
    web = FakeService("web", status="exited", exit_code=2, logs=["panic: nil pointer"])
    async with open_agent(_ctx(tmp_path, web, **AUTONOMOUS)) as agent:
        nodes = await _run(agent, "r1", [_alert("web")])
        state = await agent.state("r1")
    assert nodes == ["triage", "root_cause", "plan", "approve", "execute", "validate", "learn"]
    assert state["diagnosis"]["category"] == "crash" and state["outcome"] == "resolved"
    assert [a["status"] for a in state["actions"]] == ["succeeded"] and web.restarts == 1


async def test_safety_mode_waits_then_reject_leaves_it_alone(tmp_path) -> None:
    web = FakeService("web", status="exited", exit_code=2)
    async with open_agent(_ctx(tmp_path, web)) as agent:
        nodes = await _run(agent, "r1", [_alert("web")])
        request = await agent.pending_approval("r1")
        assert nodes[-1] == "__interrupt__" and request is not None
        assert request["plan"]["steps"][0]["operation"] == "restart_service"
        assert "SAFETY_MODE" in request["why"]
        nodes = await _run(
            agent, "r1", resume={"decision": "reject", "approver": "ana", "comment": "not now"}
        )
        state = await agent.state("r1")
    assert nodes == ["await_approval", "escalate", "learn"]
    assert state["outcome"] == "rejected" and state["approval"]["approver"] == "ana"
    assert web.restarts == 0 and state.get("actions", []) == []


async def test_approve_then_resume_runs_once(tmp_path) -> None:
    web = FakeService("web", status="exited", exit_code=2)
    async with open_agent(_ctx(tmp_path, web)) as agent:
        await _run(agent, "r1", [_alert("web")])
        await _run(agent, "r1", resume={"decision": "approve", "approver": "ana"})
        assert await agent.pending_approval("r1") is None
        await _run(agent, "r1", resume={"decision": "approve", "approver": "bob"})  # nothing waits
        state = await agent.state("r1")
    assert state["outcome"] == "resolved" and web.restarts == 1


async def test_unfixable_crash_is_rediagnosed_as_crash_loop_and_escalated(tmp_path) -> None:
    web = FakeService("web", status="exited", exit_code=1, sticky=True)
    async with open_agent(_ctx(tmp_path, web, **AUTONOMOUS)) as agent:
        nodes = await _run(agent, "r1", [_alert("web")])
        state = await agent.state("r1")
    assert nodes.count("root_cause") == 2 and nodes[-2:] == ["escalate", "learn"]
    assert state["diagnosis"]["category"] == "crash_loop" and state["outcome"] == "escalated"
    assert web.restarts == 1 and state["attempts"] == 1


async def test_max_attempts_bounds_the_loop(tmp_path) -> None:
    # A hang that a restart does not fix: each attempt restarts, MAX_ATTEMPTS=2 stops it.
    web = FakeService("web", status="paused", sticky=True)
    async with open_agent(_ctx(tmp_path, web, **AUTONOMOUS)) as agent:
        nodes = await _run(agent, "r1", [_alert("web")])
        state = await agent.state("r1")
    assert nodes.count("execute") == 2 and web.restarts == 2
    assert state["outcome"] == "escalated" and "MAX_ATTEMPTS=2" in state["escalation"]


async def test_no_fault_unknown_target_and_resolved_alerts(tmp_path) -> None:
    async with open_agent(_ctx(tmp_path, FakeService("web"), **AUTONOMOUS)) as agent:
        assert await _run(agent, "ok", [_alert("web")]) == ["triage", "root_cause", "plan", "learn"]
        assert (await agent.state("ok"))["outcome"] == "no_action"
        assert await _run(agent, "unknown", [_alert("ghost")]) == ["triage", "escalate", "learn"]
        assert "unknown target" in (await agent.state("unknown"))["escalation"]
        assert await _run(agent, "gone", [_alert("web", "resolved")]) == ["triage", "learn"]
        assert (await agent.state("gone"))["outcome"] == "superseded"


async def test_a_fix_that_did_not_hold_is_not_planned_by_itself_next_time(tmp_path) -> None:
    """The first crash: the restart does not fix it (it exits again), the run escalates, and
    learn files it under `crash` with the restart that did not hold. The next crash of the
    service: no restart by itself, an escalation citing what was learned."""
    web = FakeService("web", status="exited", exit_code=2, sticky=True)
    ctx = _ctx(tmp_path, web, **AUTONOMOUS)
    async with open_agent(ctx) as agent:
        first = await _run(agent, "r1", [_alert("web")])
        assert "execute" in first and (await agent.state("r1"))["outcome"] == "escalated"
        restarts = web.restarts
        nodes = await _run(agent, "r2", [_alert("web", fingerprint="f2")])
        state = await agent.state("r2")
    assert [i.category for i in await ctx.store.incidents("web")] == ["crash", "crash"]
    assert "execute" not in nodes and state["outcome"] == "escalated" and web.restarts == restarts
    assert state["escalation_reason"] == "ineffective_chain", state["escalation"]
    assert "restart_service held 0 of 1 times in 7 days" in state["plan"]["why"]


async def test_a_persons_reject_holds_even_if_the_settings_changed_meanwhile(tmp_path) -> None:
    # Asked under SAFETY_MODE; resumed by a process whose policy would act alone: still rejected.
    web = FakeService("web", status="exited", exit_code=2)
    async with open_agent(_ctx(tmp_path, web)) as agent:
        await _run(agent, "r1", [_alert("web")])
        assert await agent.pending_approval("r1") is not None
    async with open_agent(_ctx(tmp_path, web, **AUTONOMOUS)) as agent:
        nodes = await _run(agent, "r1", resume={"decision": "reject", "approver": "ana"})
        state = await agent.state("r1")
    assert nodes == ["await_approval", "escalate", "learn"]
    assert state["outcome"] == "rejected" and web.restarts == 0
