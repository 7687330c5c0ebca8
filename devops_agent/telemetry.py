"""OpenTelemetry traces of runs (issue 16.3), sent over OTLP/HTTP (protobuf) when
OTEL_EXPORTER_OTLP_ENDPOINT is set, and nothing at all otherwise.

One trace per run: its trace id is derived from the run id, so every stretch of a run (until it
waits for a person, then after the decision, even on another replica) lands in the same trace.
Each stretch is a root span `run`; each node a child span `node <name>`; each model request and
each backend operation (Docker) a child of its node. Attributes: run_id, service, category,
operation, outcome; every string value passes through devops_agent.redact first.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NoOpTracer, Span, Status, StatusCode, Tracer

from devops_agent.redact import redact

log = logging.getLogger(__name__)
TRACES_PATH = "/v1/traces"
_run_trace: ContextVar[int | None] = ContextVar("devops_agent_run_trace", default=None)
_provider: TracerProvider | None = None
_NOOP = NoOpTracer()


class _RunTraceIds(RandomIdGenerator):
    """Random ids, but the trace id of a run's root span is the run's own."""

    def generate_trace_id(self) -> int:
        wanted = _run_trace.get()
        return wanted if wanted is not None else super().generate_trace_id()


def trace_id_of(run_id: str) -> int:
    """The run's trace id: 128 bits of SHA-256 of its id (never 0, which OTel calls invalid)."""
    value = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:16], "big")
    return value or 1


def traces_url(endpoint: str) -> str:
    """The standard OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: traces go to its /v1/traces."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def configure(endpoint: str | None, service_name: str, service_version: str) -> bool:
    """Start exporting to `endpoint` (None: stay off). Whether traces are on."""
    global _provider
    if not endpoint or _provider is not None:
        return _provider is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({"service.name": service_name, "service.version": service_version})
    provider = TracerProvider(resource=resource, id_generator=_RunTraceIds())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
    _provider = provider
    log.info("traces go to %s", redact(traces_url(endpoint)))
    return True


def shutdown() -> None:
    """Send what is left and stop exporting."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def tracer() -> Tracer:
    return _provider.get_tracer("devops_agent") if _provider is not None else _NOOP


def clean(attributes: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """Attributes OTel accepts, strings redacted, empty values left out."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in attributes.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool | int | float):
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = redact(",".join(str(v) for v in value))
        else:
            out[key] = redact(str(value))
    return out


def annotate(span: Span, attributes: Mapping[str, Any]) -> None:
    if span.is_recording():
        span.set_attributes(clean(attributes))


@contextmanager
def run_span(run_id: str, **attributes: Any) -> Iterator[Span]:
    """The root span of one stretch of a run, in the run's own trace."""
    token = _run_trace.set(trace_id_of(run_id))
    started = tracer().start_span(
        "run", context=Context(), attributes=clean({"run_id": run_id, **attributes})
    )
    _run_trace.reset(token)  # only the root takes the run's id; its children inherit it
    with trace.use_span(started, end_on_exit=True) as root:
        yield root


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span]:
    """A child of the current span (a node, a model request, a backend call)."""
    with tracer().start_as_current_span(name, attributes=clean(attributes)) as current:
        yield current


def failed(current: Span, error: str) -> None:
    current.set_status(Status(StatusCode.ERROR, redact(error)[:500]))


def run_attributes(state: Mapping[str, Any]) -> dict[str, Any]:
    """run_id, service, category, operation and outcome, as far as the state knows them."""
    diagnosis = state.get("diagnosis") or {}
    plan = state.get("plan") or {}
    steps = plan.get("steps") or [] if isinstance(plan, dict) else []
    return {
        "run_id": state.get("run_id"),
        "service": state.get("service"),
        "category": diagnosis.get("category") if isinstance(diagnosis, dict) else None,
        "operation": [s.get("operation") for s in steps if isinstance(s, dict)],
        "outcome": state.get("outcome"),
    }
