"""REASONER=llm is scored only when a real endpoint answers; otherwise the report says why."""

from __future__ import annotations

import pytest

from devops_agent.evaluation.agent import llm_endpoint
from tests.support.containers import free_port


def test_no_endpoint_configured_means_no_llm_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    assert llm_endpoint() == "OPENAI_BASE_URL and OPENAI_API_KEY are not both set"


def test_an_endpoint_that_does_not_answer_means_no_llm_scores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", base)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    reason = llm_endpoint()
    assert reason is not None and reason.startswith(f"{base}/models did not answer")
