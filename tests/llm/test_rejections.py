"""Answers that must never run: unknown operations, shell commands, other services, bad fields.

Each is rejected with its reasons recorded, the rules reasoner answers that step instead, and
only registry operations on the incident's own target reach the backend.
"""

from __future__ import annotations

from typing import Any

import pytest

from devops_agent.context import AgentContext
from devops_agent.tools.fake import FakeBackend, FakeService
from tests.llm.conftest import (
    Recording,
    alert,
    diagnosis,
    llm_settings,
    plan,
    records,
    run_incident,
    step,
)
from tests.llm.server import ScriptedLLM, call, tools
from tests.support.factories import context

READ_ONLY = {"health_check", "get_logs", "check_resources"}


def _ctx(
    tmp_path: Any, llm: ScriptedLLM, **settings: Any
) -> tuple[AgentContext, Recording, FakeService]:
    web = FakeService("web", status="exited", exit_code=2, logs=["panic: nil pointer"])
    db = FakeService("billing-db")
    backend = Recording(FakeBackend([web, db]))
    return context(llm_settings(tmp_path, llm, **settings), backend), backend, web


@pytest.mark.parametrize(
    ("bad_step", "reason"),
    [
        (step("delete_volume", "web", volume="data"), "'delete_volume' is not an operation"),
        (step("execute_command", "web", argv=["sh", "-c", "rm -rf /data"]), "shell"),
        (step("execute_command", "web", argv=["nginx -s reload; rm -rf /"]), "shell syntax"),
        (step("restart_service", "web", command="rm -rf /"), "Extra inputs are not permitted"),
        (step("restart_service", "billing-db"), "neither the incident's target nor a dependency"),
        (step("scale_service", "web", replicas=500), "replicas"),
    ],
    ids=[
        "unknown-operation",
        "shell-argv",
        "shell-string",
        "extra-param",
        "other-service",
        "bad-param",
    ],
)
async def test_a_rejected_plan_falls_back_to_the_rules_and_never_runs(
    tmp_path, llm: ScriptedLLM, bad_step: dict[str, Any], reason: str
) -> None:
    ctx, backend, web = _ctx(
        tmp_path, llm, execute_command_allowlist="sh -c;nginx -s reload"
    )  # even an allowlisted shell is refused
    llm.push(
        diagnosis("crash", "web panicked and exited.", 0.9, "panic: nil pointer"),
        plan("remediate", step("restart_service", "web"), bad_step),
    )
    state = await run_incident(ctx, alert("web"))

    assert state["diagnosis"]["reasoner"] == "llm" and state["plan"]["reasoner"] == "rules"
    assert records(state) == [
        ("llm", "diagnose", False, None),
        ("llm", "plan", False, "invalid"),
        ("rules", "plan", True, None),
    ]
    assert any(reason in r for r in state["reasoning"][1]["rejected"]), state["reasoning"][1]
    # The rules' own plan ran; nothing of the model's plan did.
    assert backend.operations() <= {(op, "web") for op in READ_ONLY} | {("restart_service", "web")}
    assert web.restarts == 1 and state["outcome"] == "resolved"


async def test_a_category_outside_the_list_is_rejected(tmp_path, llm: ScriptedLLM) -> None:
    ctx, backend, web = _ctx(tmp_path, llm)
    llm.push(
        diagnosis("meltdown", "web melted.", 1.7, "panic: nil pointer"),
        plan("remediate", step("restart_service", "web")),
    )
    state = await run_incident(ctx, alert("web"))

    assert state["diagnosis"]["reasoner"] == "rules" and state["diagnosis"]["category"] == "crash"
    assert state["plan"]["reasoner"] == "llm"
    assert records(state)[:2] == [
        ("llm", "diagnose", False, "invalid"),
        ("rules", "diagnose", True, None),
    ]
    rejected = state["reasoning"][0]["rejected"]
    assert any(r.startswith("category:") for r in rejected)
    assert any(r.startswith("confidence:") for r in rejected)


async def test_mutating_and_foreign_tool_calls_are_refused_during_the_investigation(
    tmp_path, llm: ScriptedLLM
) -> None:
    ctx, backend, web = _ctx(tmp_path, llm)
    llm.push(
        tools(
            call("restart_service", target="web"),
            call("get_logs", target="billing-db"),
            call("health_check", target="web"),
        ),
        tools(call("health_check", target="web")),  # identical: refused
        diagnosis("crash", "web exited with code 2.", 0.9, "panic: nil pointer"),
        plan("remediate", step("restart_service", "web")),
    )
    state = await run_incident(ctx, alert("web"))

    diag = state["reasoning"][0]
    assert state["diagnosis"]["reasoner"] == "llm" and diag["error"] is None
    assert diag["tool_calls"] == 1 and diag["tools"] == ["health_check(web)"]
    assert len(diag["rejected"]) == 3
    assert "restart_service: not a read-only tool" in diag["rejected"][0]
    assert "'billing-db' is not a target of this incident" in diag["rejected"][1]
    assert "identical call" in diag["rejected"][2]
    outputs = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert outputs[0].startswith("refused:") and outputs[1].startswith("refused:")
    # Nothing touched billing-db; web was restarted once, by the plan, after approval by policy.
    assert all(target == "web" for _, target in backend.operations())
    assert web.restarts == 1 and state["outcome"] == "resolved"


async def test_uncited_or_contradicted_claims_lower_the_confidence_and_ask_a_person(
    tmp_path, llm: ScriptedLLM
) -> None:
    ctx, backend, web = _ctx(tmp_path, llm)
    llm.push(
        diagnosis("hang", "web is stuck in a deadlock.", 0.99, "thread dump shows a deadlock"),
        plan("remediate", step("restart_service", "web"), confidence=0.99),
    )
    state = await run_incident(ctx, alert("web"))

    assert state["diagnosis"]["reasoner"] == "llm" and state["plan"]["reasoner"] == "llm"
    notes = state["reasoning"][0]["confidence"]["notes"]
    assert any("no container is running" in n for n in notes)
    assert any("not in the gathered data" in n for n in notes)
    assert state["diagnosis"]["confidence"] < 0.3 and state["diagnosis"]["evidence"] == []
    # SAFETY_MODE is off, yet the run waits for a person: the evidence does not back the claim.
    assert state["nodes"][-1] == "__interrupt__" and state["plan"]["requires_approval"]
    assert "CONFIDENCE_THRESHOLD" in state["plan"]["why"] and web.restarts == 0
