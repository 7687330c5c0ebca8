"""The agent's own metrics from run events: actions, reasoner calls, fallbacks and errors."""

from __future__ import annotations

from devops_agent.orchestration.metrics import Metrics


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_node_updates_count_actions_and_reasoner_records() -> None:
    metrics = Metrics()
    metrics.observe_update(
        {
            "actions": [
                {"operation": "restart_service", "status": "succeeded"},
                {"operation": "scale_service", "status": "refused"},
            ],
            "reasoning": [
                {
                    "reasoner": "llm",
                    "step": "diagnose",
                    "error": "timeout: no answer within 60s",
                    "input_tokens": 1200,
                    "output_tokens": 80,
                    "latency_ms": 60000.0,
                },
                {"reasoner": "rules", "step": "diagnose", "fallback": True, "latency_ms": 0.4},
            ],
        }
    )
    metrics.observe_update(None)  # updates of nodes that return nothing
    actions = "devops_agent_actions_total"
    assert _sample(metrics, actions, operation="restart_service", result="succeeded") == 1
    assert _sample(metrics, actions, operation="scale_service", result="refused") == 1
    calls = "devops_agent_reasoner_calls_total"
    assert _sample(metrics, calls, reasoner="llm", step="diagnose") == 1
    assert _sample(metrics, calls, reasoner="rules", step="diagnose") == 1
    assert _sample(metrics, "devops_agent_reasoner_fallbacks_total", step="diagnose") == 1
    errors = "devops_agent_reasoner_errors_total"
    assert _sample(metrics, errors, reasoner="llm", kind="timeout") == 1
    tokens = "devops_agent_reasoner_tokens_total"
    assert _sample(metrics, tokens, reasoner="llm", direction="input") == 1200
    assert _sample(metrics, "devops_agent_reasoner_seconds_count", reasoner="rules") == 1


def test_webhook_requests_and_approvals_waiting() -> None:
    metrics = Metrics()
    metrics.observe_request("/webhook/alerts", 202)
    metrics.observe_request("/webhook/alerts", 503)
    metrics.observe_request("/runs", 200)
    metrics.runs_by_status.labels(status="awaiting_approval").set(3)
    text = metrics.render().decode()
    assert 'devops_agent_webhook_requests_total{code="202"} 1.0' in text
    assert 'devops_agent_webhook_requests_total{code="503"} 1.0' in text
    assert "devops_agent_approvals_waiting 3.0" in text
