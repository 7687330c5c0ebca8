"""Both answer methods (tool calling and JSON-schema output) and the streaming client."""

from __future__ import annotations

import json
from typing import Any

from devops_agent.context import AgentContext
from devops_agent.reasoning.fallback import FallbackReasoner
from devops_agent.reasoning.llm import LLMReasoner
from devops_agent.reasoning.rules import RulesReasoner
from devops_agent.tools.fake import FakeBackend, FakeService
from tests.llm.conftest import alert, diagnosis, llm_settings, plan, records, run_incident, step
from tests.llm.server import ScriptedLLM, call, text, tools
from tests.support.factories import context

CRASH = {
    "category": "crash",
    "root_cause": "web exited with code 2 after a nil pointer panic.",
    "confidence": 0.9,
    "evidence": ["panic: nil pointer"],
}
RESTART = {
    "action": "remediate",
    "steps": [{"operation": "restart_service", "target": "web", "params": {}}],
    "why": "a restart clears a crash",
    "confidence": 0.9,
}


def _ctx(tmp_path: Any, llm: ScriptedLLM, streaming: bool = False, **settings: Any) -> AgentContext:
    web = FakeService("web", status="exited", exit_code=2, logs=["panic: nil pointer"])
    ctx = context(llm_settings(tmp_path, llm, **settings), FakeBackend([web]))
    if streaming:
        llm_reasoner = LLMReasoner.from_settings(ctx.settings, ctx.registry, streaming=True)
        ctx.reasoner = FallbackReasoner(llm_reasoner, RulesReasoner())
    return ctx


async def test_json_schema_mode(tmp_path, llm: ScriptedLLM) -> None:
    ctx = _ctx(tmp_path, llm, llm_structured_output="json_schema")
    llm.push(
        tools(call("get_logs", target="web")),
        text("```json\n" + json.dumps(CRASH) + "\n```"),
        text(json.dumps(RESTART)),
    )
    state = await run_incident(ctx, alert("web"))

    assert records(state) == [("llm", "diagnose", False, None), ("llm", "plan", False, None)]
    assert state["diagnosis"]["reasoner"] == "llm" and state["plan"]["reasoner"] == "llm"
    investigate, answered, planned = llm.requests
    assert [t["function"]["name"] for t in investigate["tools"]] == [
        "health_check",
        "get_logs",
        "check_resources",
    ]
    assert (
        "response_format" not in investigate
        and "JSON schema" in investigate["messages"][0]["content"]
    )
    assert planned["response_format"]["type"] == "json_schema"
    assert planned["response_format"]["json_schema"]["name"] == "plan"
    assert "tools" not in planned and state["outcome"] == "resolved"


async def test_streaming_with_tool_calls_and_usage(tmp_path, llm: ScriptedLLM) -> None:
    ctx = _ctx(tmp_path, llm, streaming=True)
    llm.push(
        tools(call("health_check", target="web"), call("get_logs", target="web", lines=20)),
        diagnosis("crash", CRASH["root_cause"], 0.9, "panic: nil pointer"),
        plan("remediate", step("restart_service", "web")),
    )
    state = await run_incident(ctx, alert("web"))

    assert records(state) == [("llm", "diagnose", False, None), ("llm", "plan", False, None)]
    assert all(body["stream"] and body["stream_options"]["include_usage"] for body in llm.requests)
    diag = state["reasoning"][0]
    assert diag["tool_calls"] == 2 and diag["input_tokens"] == 240 and diag["output_tokens"] == 60
    assert state["plan"]["steps"][0]["operation"] == "restart_service"
    assert state["outcome"] == "resolved"


async def test_streaming_json_schema_with_a_forced_final_answer(tmp_path, llm: ScriptedLLM) -> None:
    ctx = _ctx(tmp_path, llm, streaming=True, llm_structured_output="json_schema")
    llm.push(
        text("Let me think about it: the container exited."),
        text(json.dumps(CRASH)),
        text(json.dumps(RESTART)),
    )
    state = await run_incident(ctx, alert("web"))

    assert records(state) == [("llm", "diagnose", False, None), ("llm", "plan", False, None)]
    assert state["reasoning"][0]["model_calls"] == 2
    forced = llm.requests[1]
    assert forced["response_format"]["json_schema"]["name"] == "diagnosis"
    assert state["outcome"] == "resolved"
