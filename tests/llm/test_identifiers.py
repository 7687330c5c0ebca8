"""REDACT_IDENTIFIERS: the model reads pseudonyms, and what it names acts on the real service."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devops_agent.context import AgentContext
from devops_agent.reasoning.identifiers import Pseudonyms
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
from tests.support.containers import Lab, container_state, logs, probe, wait_for

PANIC = "panic: runtime error: invalid memory address or nil pointer dereference"
SERVICE = "checkout-7f3a9c"
IDENTIFIERS = [
    SERVICE,
    "10.20.30.40",
    "172.17.0.9",
    "fd00:dead:beef::17",
    "ops-oncall@example.com",
    "db-primary.prod.example.com",
]
LOGS = [
    f"info: {SERVICE} listening on 127.0.0.1:8080",
    "warn: slow answer from db-primary.prod.example.com (10.20.30.40:5432)",
    "error: upstream 172.17.0.9 refused; also tried fd00:dead:beef::17",
    "error: paging ops-oncall@example.com",
    PANIC,
]


def test_pseudonyms_are_stable_and_map_back() -> None:
    text = " ".join(LOGS)
    first, second = Pseudonyms([SERVICE]), Pseudonyms([SERVICE])
    hidden = first.hide(text)
    assert hidden == second.hide(text)  # derived from the data: the same in every call
    assert not [name for name in IDENTIFIERS if name in hidden]
    assert hidden.startswith("info: host-1 listening on 127.0.0.1:8080")  # loopback stays
    assert "ip-1:5432" in hidden and "email-1" in hidden and "host-2" in hidden
    assert first.reveal(hidden) == text
    assert first.hide(hidden) == hidden  # hiding twice changes nothing
    # The model's answer: pseudonyms it was given map back; others stay as written.
    answer = {"target": "host-1", "why": "host-1 cannot reach ip-1; host-9 is unknown"}
    assert first.reveal_data(answer) == {
        "target": SERVICE,
        "why": f"{SERVICE} cannot reach 10.20.30.40; host-9 is unknown",
    }
    # Names are matched whole: a longer name that contains a known one is its own.
    names = Pseudonyms(["api", "api-gateway"])
    assert names.hide("api-gateway calls api; api_key rotated") == (
        "host-2 calls host-1; api_key rotated"
    )


def _bodies(llm: ScriptedLLM) -> str:
    return "\n".join(json.dumps(body) for body in llm.requests)


async def test_the_model_sees_pseudonyms_and_the_plan_acts_on_the_real_service(
    tmp_path: Any, llm: ScriptedLLM
) -> None:
    service = FakeService(SERVICE, status="exited", exit_code=2, logs=LOGS)
    backend = Recording(FakeBackend([service]))
    settings = llm_settings(tmp_path, llm, redact_identifiers=True)
    ctx = AgentContext.from_settings(settings, backend=backend)
    ctx.validate_interval = 0.05
    llm.push(
        tools(call("get_logs", target="host-1", lines=50)),
        diagnosis(
            "crash",
            "host-1 panicked on a nil pointer and exited",
            0.9,
            "panic: runtime error: invalid memory address or nil pointer dereference",
        ),
        plan("remediate", step("restart_service", "host-1"), why="restart host-1"),
    )
    state = await run_incident(ctx, alert(SERVICE))

    bodies = _bodies(llm)
    assert not [name for name in IDENTIFIERS if name in bodies]
    assert "host-1" in bodies and "ip-1" in bodies and "email-1" in bodies
    assert "127.0.0.1:8080" in bodies  # what is not an identifier still reaches the model
    system = llm.requests[0]["messages"][0]["content"]
    assert "the service host-1" in system and "Their only allowed targets are: host-1" in system
    # The tool call, the diagnosis and the plan are in real names; the restart hit the service.
    assert ("get_logs", SERVICE) in backend.operations()
    assert records(state) == [("llm", "diagnose", False, None), ("llm", "plan", False, None)]
    assert state["diagnosis"]["root_cause"] == f"{SERVICE} panicked on a nil pointer and exited"
    assert [(s["operation"], s["target"]) for s in state["plan"]["steps"]] == [
        ("restart_service", SERVICE)
    ]
    assert [(a["operation"], a["target"], a["status"]) for a in state["actions"]] == [
        ("restart_service", SERVICE, "succeeded")
    ]
    assert state["outcome"] == "resolved" and service.restarts == 1
    # The numbering is the same in the plan's call as in the diagnosis's.
    plan_request = json.dumps(llm.requests[-1])
    assert "host-1" in plan_request and "ip-1:5432" in plan_request


async def test_without_the_setting_the_model_reads_the_real_names(
    tmp_path: Any, llm: ScriptedLLM
) -> None:
    service = FakeService(SERVICE, status="exited", exit_code=2, logs=LOGS)
    ctx = AgentContext.from_settings(llm_settings(tmp_path, llm), backend=FakeBackend([service]))
    ctx.validate_interval = 0.05
    llm.push(
        diagnosis("crash", "it panicked", 0.9, LOGS[-1]),
        plan("remediate", step("restart_service", SERVICE)),
    )
    state = await run_incident(ctx, alert(SERVICE))
    assert all(name in _bodies(llm) for name in IDENTIFIERS)
    assert state["outcome"] == "resolved"


@pytest.mark.docker
async def test_on_a_real_container_the_restart_acts_on_the_real_service(
    tmp_path: Any, lab: Lab, llm: ScriptedLLM
) -> None:
    app = lab.start(f"orders-{lab.lab_id}")
    lines = "; ".join(LOGS[1:4]).replace("'", "")
    lab.exec(app, "sh", "-c", f"echo 'error: {lines}' >/proc/1/fd/1; touch /run/crash")
    wait_for(lambda: container_state(lab.client, app.name)["Status"] == "exited", 15)
    llm.push(
        tools(call("get_logs", target="host-1", lines=50)),
        diagnosis("crash", "host-1 panicked and exited", 0.9, PANIC),
        plan("remediate", step("restart_service", "host-1")),
    )
    settings = llm_settings(tmp_path, llm, redact_identifiers=True, validate_timeout=15)
    state = await run_incident(AgentContext.from_settings(settings), alert(app.name))

    bodies = _bodies(llm)
    assert "10.20.30.40" in logs(lab.client, app.name)  # the container did print them
    assert not [name for name in [app.name, *IDENTIFIERS[1:]] if name in bodies]
    assert "host-1" in bodies and "email-1" in bodies and PANIC in bodies
    assert [(a["operation"], a["target"], a["status"]) for a in state["actions"]] == [
        ("restart_service", app.name, "succeeded")
    ]
    assert state["outcome"] == "resolved" and probe(app.health_url) == 200
