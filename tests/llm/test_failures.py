"""When the model is slow, failing, rate limited, talking nonsense or switched off by the breaker,
the rules reasoner answers the step, and the run records which reasoner did what and why."""

from __future__ import annotations

from typing import Any

import pytest

from devops_agent.context import AgentContext
from devops_agent.reasoning.errors import LLMError
from devops_agent.tools.fake import FakeBackend, FakeService
from tests.llm.conftest import alert, diagnosis, llm_settings, plan, records, run_incident, step
from tests.llm.server import Reply, ScriptedLLM, error, text
from tests.support.factories import context

FELL_BACK = [("rules", "diagnose", True, None), ("rules", "plan", True, None)]


def _ctx(tmp_path: Any, llm: ScriptedLLM, **settings: Any) -> tuple[AgentContext, FakeService]:
    web = FakeService("web", status="exited", exit_code=2, logs=["panic: nil pointer"])
    return context(llm_settings(tmp_path, llm, **settings), FakeBackend([web])), web


def _llm_errors(state: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(s, e) for r, s, _, e in records(state) if r == "llm"]


async def test_a_slow_model_times_out_and_the_rules_answer(tmp_path, llm: ScriptedLLM) -> None:
    ctx, web = _ctx(tmp_path, llm, llm_timeout=0.3)
    llm.responder = lambda body: Reply(delay=1.5, content="too late")
    state = await run_incident(ctx, alert("web"))

    assert state["diagnosis"]["reasoner"] == "rules" and state["plan"]["reasoner"] == "rules"
    assert _llm_errors(state) == [("diagnose", "timeout"), ("plan", "timeout")]
    assert [r for r in records(state) if r[0] == "rules"] == FELL_BACK
    assert len(llm.requests) == 2  # a timeout is not retried: the rules answer at once
    assert state["outcome"] == "resolved" and web.restarts == 1


@pytest.mark.parametrize(("status", "kind"), [(500, "http_5xx"), (429, "rate_limit")])
async def test_server_errors_are_retried_then_the_rules_answer(
    tmp_path, llm: ScriptedLLM, status: int, kind: str
) -> None:
    ctx, web = _ctx(tmp_path, llm, llm_max_retries=2)
    llm.responder = lambda body: error(status, retry_after_ms=20)
    state = await run_incident(ctx, alert("web"))

    assert state["diagnosis"]["reasoner"] == "rules" and state["plan"]["reasoner"] == "rules"
    assert _llm_errors(state) == [("diagnose", kind), ("plan", kind)]
    assert [r["retries"] for r in state["reasoning"] if r["reasoner"] == "llm"] == [2, 2]
    assert len(llm.requests) == 6  # each step: the first try and LLM_MAX_RETRIES=2 retries
    assert state["outcome"] == "resolved" and web.restarts == 1


async def test_a_rate_limit_that_clears_is_retried_and_the_model_answers(
    tmp_path, llm: ScriptedLLM
) -> None:
    ctx, web = _ctx(tmp_path, llm)
    llm.push(
        error(429),
        diagnosis("crash", "web exited with code 2.", 0.9, "panic: nil pointer"),
        error(503),
        plan("remediate", step("restart_service", "web")),
    )
    state = await run_incident(ctx, alert("web"))

    assert state["diagnosis"]["reasoner"] == "llm" and state["plan"]["reasoner"] == "llm"
    assert records(state) == [("llm", "diagnose", False, None), ("llm", "plan", False, None)]
    assert [r["retries"] for r in state["reasoning"]] == [1, 1] and len(llm.requests) == 4


async def test_a_retry_after_longer_than_the_backoff_cap_is_not_waited_for(
    tmp_path, llm: ScriptedLLM
) -> None:
    ctx, _ = _ctx(tmp_path, llm)
    llm.responder = lambda body: error(429, retry_after_ms=600_000)
    state = await run_incident(ctx, alert("web"))

    assert _llm_errors(state) == [("diagnose", "rate_limit"), ("plan", "rate_limit")]
    assert len(llm.requests) == 2 and state["diagnosis"]["reasoner"] == "rules"


async def test_a_client_error_is_not_retried(tmp_path, llm: ScriptedLLM) -> None:
    ctx, _ = _ctx(tmp_path, llm)
    llm.responder = lambda body: Reply(status=401, content="bad key")
    state = await run_incident(ctx, alert("web"))

    assert _llm_errors(state) == [("diagnose", "http_4xx"), ("plan", "http_4xx")]
    assert len(llm.requests) == 2 and state["plan"]["reasoner"] == "rules"


async def test_malformed_output_falls_back(tmp_path, llm: ScriptedLLM) -> None:
    ctx, _ = _ctx(tmp_path, llm)
    llm.push(
        text("It is probably a crash, I would restart it."),  # no answer: asked once more
        text("{not json"),
        Reply(tool_calls=[("submit_plan", '{"action": "remediate", ')]),  # truncated arguments
    )
    state = await run_incident(ctx, alert("web"))

    assert _llm_errors(state) == [("diagnose", "malformed"), ("plan", "malformed")]
    assert state["diagnosis"]["reasoner"] == "rules" and state["plan"]["reasoner"] == "rules"
    assert llm.requests[1]["messages"][-1]["content"].startswith("Give your answer now")


async def test_the_breaker_opens_after_n_failures_and_the_model_is_no_longer_called(
    tmp_path, llm: ScriptedLLM
) -> None:
    ctx, _ = _ctx(tmp_path, llm, llm_max_retries=0, llm_breaker_failures=2, llm_breaker_window=60)
    llm.responder = lambda body: error(500)
    first = await run_incident(ctx, alert("web"), run_id="run-1")
    assert _llm_errors(first) == [("diagnose", "http_5xx"), ("plan", "http_5xx")]
    assert len(llm.requests) == 2

    second = await run_incident(ctx, alert("web"), run_id="run-2")
    assert _llm_errors(second) == [("diagnose", "circuit_open"), ("plan", "circuit_open")]
    assert len(llm.requests) == 2  # the model was not called again
    assert second["diagnosis"]["reasoner"] == "rules" and second["plan"]["reasoner"] == "rules"
    assert [r for r in records(second) if r[0] == "rules"] == FELL_BACK


async def test_with_fallback_disabled_the_error_surfaces(tmp_path, llm: ScriptedLLM) -> None:
    ctx, web = _ctx(tmp_path, llm, fallback_enabled=False, llm_max_retries=0)
    llm.responder = lambda body: error(500)
    with pytest.raises(LLMError, match="http_5xx"):
        await run_incident(ctx, alert("web"))
    assert web.restarts == 0
