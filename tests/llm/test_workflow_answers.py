"""The model may answer a plan with a workflow id instead of steps: its next phase is run,
checked like any steps; an id not in the catalog is rejected (the rules answer)."""

from __future__ import annotations

from typing import Any

from devops_agent.tools.fake import FakeBackend, FakeService
from tests.llm.conftest import alert, diagnosis, llm_settings, records, run_incident
from tests.llm.server import ScriptedLLM, answer
from tests.support.factories import context


def _ctx(tmp_path: Any, llm: ScriptedLLM) -> tuple[Any, FakeService]:
    web = FakeService("web", status="exited", exit_code=2, logs=["panic: nil pointer"])
    return context(llm_settings(tmp_path, llm), FakeBackend([web])), web


def _plan(workflow: str) -> Any:
    return answer(
        "submit_plan",
        action="remediate",
        steps=[],
        workflow=workflow,
        why="the crash workflow",
        confidence=0.9,
    )


async def test_a_workflow_answer_runs_its_phase(tmp_path, llm: ScriptedLLM) -> None:
    ctx, web = _ctx(tmp_path, llm)
    llm.push(diagnosis("crash", "nil pointer", 0.9, "panic: nil pointer"), _plan("crash"))
    state = await run_incident(ctx, alert("web"))
    assert state["plan"]["reasoner"] == "llm" and state["plan"]["workflow"] == "crash"
    assert [s["operation"] for s in state["plan"]["steps"]] == ["restart_service"]
    assert state["outcome"] == "resolved" and web.restarts == 1
    data = llm.requests[-1]["messages"][-1]["content"]  # the catalog, as quoted data
    assert '"workflows"' in data and '"id":"crash"' in data.replace(" ", "")
    assert "dependency-down" not in data  # only the workflows for this diagnosis


async def test_a_workflow_not_in_the_catalog_is_rejected(tmp_path, llm: ScriptedLLM) -> None:
    ctx, web = _ctx(tmp_path, llm)
    llm.responder = None
    llm.push(
        diagnosis("crash", "nil pointer", 0.9, "panic: nil pointer"),
        _plan("reboot-the-world"),
        _plan("reboot-the-world"),
        _plan("reboot-the-world"),
    )
    state = await run_incident(ctx, alert("web"))
    assert records(state)[-1] == ("rules", "plan", True, None)
    assert state["plan"]["reasoner"] == "rules" and state["plan"]["workflow"] == "crash"
