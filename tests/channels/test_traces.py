"""OpenTelemetry traces (issue 16.3): a real `devops-agent serve` with OTEL_EXPORTER_OTLP_ENDPOINT
sends one trace per run over OTLP/HTTP (protobuf) to a local receiver that decodes it: a root
span per stretch of the run (before and after the approval), a span per node beneath it, the
model's requests (a scripted OpenAI-compatible server) and the Docker calls beneath their nodes,
with run_id, service, category, operation and outcome; attribute values are redacted."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devops_agent import telemetry
from tests.channels.otlp import OtlpReceiver
from tests.llm.conftest import diagnosis
from tests.llm.server import ScriptedLLM, ServerThread
from tests.server.conftest import Server, alert_payload
from tests.support.containers import Lab, wait_for
from tests.support.secrets import SECRETS

NODES_BEFORE = {"node triage", "node root_cause", "node plan", "node approve"}
NODES_AFTER = {"node await_approval", "node execute", "node validate", "node settle", "node learn"}


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedLLM, str]]:
    model = ScriptedLLM()
    with ServerThread(model.app) as thread:
        yield model, thread.base_url


@pytest.mark.docker
def test_a_run_is_one_trace_with_its_nodes_model_and_docker_calls(
    make_server: Callable[..., Server], lab: Lab, scripted: tuple[ScriptedLLM, str]
) -> None:
    model, base_url = scripted
    model.push(diagnosis("crash", "the process exited with code 2", 0.9, "exit code 2"))
    receiver = OtlpReceiver()
    srv = make_server(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
        REASONER="llm",
        OPENAI_API_KEY="sk-test-not-a-real-key",
        OPENAI_BASE_URL=base_url,
        LLM_MAX_RETRIES="0",
        FALLBACK_ENABLED="true",
    )
    app = lab.crashed()
    run_id = srv.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    srv.wait_status(run_id, "awaiting_approval")
    assert srv.resume(run_id, "approve").status_code == 202
    run = srv.wait_status(run_id, "completed")
    assert run["outcome"] == "resolved", run

    trace_id = hashlib.sha256(run_id.encode()).digest()[:16].hex()
    names = lambda: {s.name for s in receiver.of_trace(trace_id)}  # noqa: E731
    wait_for(lambda: names() >= NODES_BEFORE | NODES_AFTER, timeout=60, what="the node spans")
    spans = receiver.of_trace(trace_id)
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if s.name == "run"]
    assert all(r.parent_id == "" for r in roots)
    stretches = [r.attributes["stretch"] for r in roots]
    # before the decision, after it, and the settle window's checks (VALIDATE_SETTLE)
    assert sorted(set(stretches)) == ["decision", "settle", "start"], stretches
    assert stretches.count("start") == 1 and stretches.count("decision") == 1
    first = next(r for r in roots if r.attributes["stretch"] == "start")
    decided = next(r for r in roots if r.attributes["stretch"] == "decision")
    assert first.attributes["waiting"] == "approval"
    assert decided.attributes["decision"] == "approve"
    assert [r.attributes.get("outcome") for r in roots if r.attributes.get("outcome")] == [
        "resolved"
    ]
    for root in roots:
        assert root.attributes["run_id"] == run_id
        assert root.attributes["service"] == app.name
        assert root.attributes["category"] == "crash"
        assert "restart_service" in root.attributes["operation"]
        assert root.resource["service.name"] == "devops-ai-agent"

    # Every node is a child of its stretch's root; model and Docker calls are children of nodes.
    nodes = [s for s in spans if s.name.startswith("node ")]
    assert all(by_id[n.parent_id].name == "run" for n in nodes)
    assert {n.name for n in nodes if n.parent_id == first.span_id} >= NODES_BEFORE
    after = {n.name for n in nodes if by_id[n.parent_id].attributes["stretch"] != "start"}
    assert after >= NODES_AFTER
    plan_node = next(n for n in nodes if n.name == "node plan")
    assert plan_node.attributes["category"] == "crash" and plan_node.attributes["run_id"] == run_id

    llm_calls = [s for s in spans if s.name == "llm request"]
    assert llm_calls, names()
    assert all(by_id[s.parent_id].name in ("node root_cause", "node plan") for s in llm_calls)
    assert any(s.attributes.get("input_tokens", 0) > 0 for s in llm_calls)  # the diagnosis
    assert any(s.status_code == 2 for s in llm_calls)  # the exhausted script: an error span

    docker_calls = [s for s in spans if s.name.startswith("docker ")]
    restart = [s for s in docker_calls if s.name == "docker restart_service"]
    assert len(restart) == 1 and by_id[restart[0].parent_id].name == "node execute"
    assert restart[0].attributes["target"] == app.name and restart[0].attributes["ok"] is True
    assert any(by_id[s.parent_id].name == "node root_cause" for s in docker_calls)
    assert all(ct == "application/x-protobuf" for ct in receiver.content_types)
    receiver.shutdown()


def test_span_attributes_and_statuses_are_redacted() -> None:
    """Every secret of the corpus, given as an attribute or an error status, leaves masked."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for line, _ in SECRETS:
        with tracer.start_as_current_span("node plan") as span:
            telemetry.annotate(span, {"service": line, "operation": [line, "restart_service"]})
            telemetry.failed(span, line)
    leaked = []
    for span, (_, parts) in zip(exporter.get_finished_spans(), SECRETS, strict=True):
        sent = " ".join(
            [str(v) for v in (span.attributes or {}).values()] + [span.status.description or ""]
        )
        leaked += [part for part in parts if part in sent]
    assert leaked == []


def test_no_endpoint_no_traces() -> None:
    assert telemetry.configure(None, "devops-ai-agent", "0") is False
    with telemetry.run_span("run-x") as root:
        assert not root.is_recording()
    assert telemetry.traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert telemetry.traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"
