"""Fixtures for the LLM reasoner's tests: the scripted OpenAI-compatible server and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from devops_agent.config import Settings, load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import open_agent
from devops_agent.state import Alert, Ambiguity, Target
from devops_agent.tools.registry import Backend, OperationResult, Reconciliation
from tests.llm.server import Reply, ScriptedLLM, ServerThread, answer


@pytest.fixture(scope="session")
def llm_server() -> Iterator[ServerThread]:
    scripted = ScriptedLLM()
    server = ServerThread(scripted.app)
    server.scripted = scripted  # type: ignore[attr-defined]
    with server:
        yield server


@pytest.fixture
def llm(llm_server: ServerThread) -> Iterator[ScriptedLLM]:
    scripted: ScriptedLLM = llm_server.scripted  # type: ignore[attr-defined]
    scripted.reset()
    scripted.base_url = llm_server.base_url  # type: ignore[attr-defined]
    yield scripted
    scripted.reset()


def llm_settings(tmp_path: Any, llm: ScriptedLLM, **overrides: Any) -> Settings:
    """Settings for an LLM run against the scripted server (autonomous unless overridden)."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/agent.db",
        "reasoner": "llm",
        "openai_base_url": llm.base_url,  # type: ignore[attr-defined]
        "openai_api_key": "test",
        "llm_model": "scripted-model",
        "llm_timeout": 5,
        "llm_max_retries": 2,
        "safety_mode": False,
        "auto_approve_max_risk": "medium",
        "validate_timeout": 0.5,
        "validate_settle": 0,
        **overrides,
    }
    return load_settings(**values)


class Recording:
    """A backend wrapper that records every operation that reaches the infrastructure."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.runs: list[tuple[str, dict[str, Any]]] = []

    async def resolve(
        self, candidates: list[str], project: str | None = None
    ) -> Target | Ambiguity | None:
        return await self.inner.resolve(candidates, project)

    async def snapshot(self, operation: str, params: BaseModel) -> dict[str, Any] | None:
        return await self.inner.snapshot(operation, params)

    async def reconcile(
        self, operation: str, params: BaseModel, before: dict[str, Any] | None, since: str | None
    ) -> Reconciliation:
        return await self.inner.reconcile(operation, params, before, since)

    async def run(self, operation: str, params: BaseModel) -> OperationResult:
        self.runs.append((operation, params.model_dump(mode="json")))
        return await self.inner.run(operation, params)

    async def ping(self) -> OperationResult:
        return await self.inner.ping()

    def operations(self) -> set[tuple[str, str]]:
        return {(op, str(params.get("target"))) for op, params in self.runs}


def alert(service: str, **annotations: str) -> Alert:
    return Alert(
        alertname="ServiceDown",
        fingerprint="f1",
        labels={"service": service, "severity": "critical"},
        annotations=annotations,
    )


async def run_incident(ctx: AgentContext, incident: Alert, run_id: str = "run-1") -> dict[str, Any]:
    """One incident through the whole graph; the final state, with the nodes visited."""
    async with open_agent(ctx) as agent:
        nodes = [node async for node, _ in agent.stream(run_id, [incident])]
        state = await agent.state(run_id)
    state["nodes"] = nodes
    return state


def diagnosis(category: str, root_cause: str, confidence: float, *evidence: str) -> Reply:
    return answer(
        "submit_diagnosis",
        category=category,
        root_cause=root_cause,
        confidence=confidence,
        evidence=list(evidence),
    )


def plan(
    action: str, *steps: dict[str, Any], why: str = "scripted", confidence: float = 0.9
) -> Reply:
    return answer("submit_plan", action=action, steps=list(steps), why=why, confidence=confidence)


def step(operation: str, target: str, **params: Any) -> dict[str, Any]:
    return {"operation": operation, "target": target, "params": params, "rationale": "scripted"}


def records(state: dict[str, Any]) -> list[tuple[str, str, bool, str | None]]:
    """(reasoner, step, fallback, error kind) of each reasoner call of the run."""
    return [
        (r["reasoner"], r["step"], r["fallback"], (r["error"] or "").split(":")[0] or None)
        for r in state.get("reasoning", [])
    ]
