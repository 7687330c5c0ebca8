"""Reasoner overhead: the time the LLM reasoner adds around the model, per model call and per
step, with a scripted OpenAI-compatible server (tests/llm/server.py) that answers at once.

    .venv/bin/python bench/reasoner_overhead.py [runs]

Each run is one diagnosis (the model calls get_logs and health_check, then answers: two model
calls) and one plan (one model call), over the in-process fake backend. "Agent overhead" is the
step's wall time minus the time spent inside the model client (prompt building, tool dispatch,
validation, confidence); "model call" is the client (langchain-openai + openai) plus HTTP plus
the scripted server, shown next to a bare HTTP round trip to the same server. The rules
reasoner's full run (diagnose + plan on the same evidence) is printed alongside.
Target (issue 5): under 20 ms of agent overhead per LLM call.
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from devops_agent.config import load_settings
from devops_agent.reasoning import prompts
from devops_agent.reasoning.answers import DIAGNOSIS, DiagnosisAnswer
from devops_agent.reasoning.base import Investigation
from devops_agent.reasoning.confidence import Corpus, calibrate
from devops_agent.reasoning.llm import LLMReasoner
from devops_agent.reasoning.rules import RulesReasoner
from devops_agent.state import Alert, Evidence
from devops_agent.tools.fake import FakeBackend, FakeService
from devops_agent.tools.registry import Registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scripted server lives in tests/
from tests.llm.server import Reply, ScriptedLLM, ServerThread, answer, call, tools  # noqa: E402

PANIC = "panic: runtime error: invalid memory address or nil pointer dereference"


def respond(body: dict[str, Any]) -> Reply:
    """Stateless script: tools first, then the diagnosis; the plan when asked for one."""
    names = {t["function"]["name"] for t in body.get("tools", [])}
    if "submit_plan" in names:
        step = {"operation": "restart_service", "target": "web", "params": {}}
        return answer("submit_plan", action="remediate", steps=[step], why="crash", confidence=0.9)
    if any(m["role"] == "tool" for m in body["messages"]):
        return answer(
            "submit_diagnosis",
            category="crash",
            root_cause="web panicked on a nil pointer and exited.",
            confidence=0.95,
            evidence=[PANIC, "health_check web: exited"],
        )
    return tools(call("get_logs", target="web", lines=200), call("health_check", target="web"))


async def evidence(registry: Registry) -> list[Evidence]:
    found = []
    for op, params in (
        ("health_check", {"target": "web"}),
        ("get_logs", {"target": "web", "lines": 200}),
        ("check_resources", {"target": "web"}),
    ):
        r = await registry.run(op, params)
        found.append(
            Evidence(
                source=op, target="web", summary=f"{op} web: {r.message}", ok=r.ok, data=r.data
            )
        )
    return found


def case_of(found: list[Evidence], target: Any) -> Investigation:
    alert = Alert(alertname="ServiceDown", fingerprint="f", labels={"service": "web"})
    return Investigation(alerts=[alert], target=target, evidence=list(found))


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return f"mean {statistics.mean(ordered):7.2f} ms   p99 {p99:7.2f} ms"


async def bench(runs: int, base_url: str) -> None:
    logs = [f"2026-01-01T00:00:{i % 60:02d}Z info: served request {i}" for i in range(180)]
    web = FakeService("web", status="exited", exit_code=2, logs=[*logs, PANIC, "exiting"])
    registry = Registry(FakeBackend([web]))
    target = await registry.backend.resolve(["web"])
    found = await evidence(registry)
    settings = load_settings(
        reasoner="llm", openai_base_url=base_url, openai_api_key="bench", llm_max_retries=0
    )
    reasoner = LLMReasoner.from_settings(settings, registry)
    rules = RulesReasoner()

    async def one_llm_run() -> list[dict[str, Any]]:
        case = case_of(found, target)
        diagnosis = await reasoner.diagnose(case)
        await reasoner.plan(case, diagnosis)
        assert all(r["error"] is None for r in case.calls), case.calls
        return case.calls

    for _ in range(20):  # warm up: imports, connection pool, pydantic caches
        await one_llm_run()
    per_call, diag_over, plan_over, model_call = [], [], [], []
    for _ in range(runs):
        for record in await one_llm_run():
            overhead = record["latency_ms"] - record["model_ms"]
            per_call.append(overhead / record["model_calls"])
            model_call.append(record["model_ms"] / record["model_calls"])
            (diag_over if record["step"] == "diagnose" else plan_over).append(overhead)

    rules_runs = []
    for i in range(runs + 20):
        case = case_of(found, target)
        started = time.perf_counter()
        diagnosis = await rules.diagnose(case)
        await rules.plan(case, diagnosis)
        if i >= 20:
            rules_runs.append((time.perf_counter() - started) * 1000)

    async with httpx.AsyncClient(base_url=base_url) as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        bare = []
        for i in range(runs + 20):
            started = time.perf_counter()
            (await client.post("/chat/completions", json=body)).raise_for_status()
            if i >= 20:
                bare.append((time.perf_counter() - started) * 1000)

    # The pieces of the overhead, timed alone.
    case = case_of(found, target)
    nonce = prompts.new_nonce()
    parts: dict[str, list[float]] = {
        "prompt building (diagnose)": [],
        "validation + confidence": [],
    }
    sample = DiagnosisAnswer(
        category="crash", root_cause="x", confidence=0.9, evidence=[PANIC, "health_check web"]
    )
    for _ in range(runs):
        started = time.perf_counter()
        prompts.diagnose_messages(
            case,
            nonce,
            tool_names=reasoner.tool_names,
            targets=["web"],
            budget=8,
            spec=DIAGNOSIS,
            method="function_calling",
        )
        parts["prompt building (diagnose)"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        calibrate(sample, case, Corpus(case))
        parts["validation + confidence"].append((time.perf_counter() - started) * 1000)

    print(
        f"python {platform.python_version()}, {runs} runs (1 diagnosis with 2 tool calls + 1 plan)"
    )
    print(f"agent overhead per LLM call     {ms(per_call)}   (target < 20 ms)")
    print(
        f"  diagnose step (2 model calls) {ms(diag_over)}   (incl. 2 tool calls on the fake backend)"
    )
    print(f"  plan step (1 model call)      {ms(plan_over)}")
    for name, samples in parts.items():
        print(f"    {name:<28}{ms(samples)}")
    print(f"model call (client+HTTP+server) {ms(model_call)}")
    print(f"  bare HTTP round trip          {ms(bare)}")
    print(f"rules reasoner, full run        {ms(rules_runs)}   (diagnose + plan)")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    scripted = ScriptedLLM()
    scripted.responder = respond
    with ServerThread(scripted.app) as server:
        asyncio.run(bench(runs, server.base_url))


if __name__ == "__main__":
    main()
