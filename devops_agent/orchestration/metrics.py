"""Prometheus metrics, on a registry per app instance (several apps may live in one process).

Most run metrics come from the run events the manager already publishes (`MeteredHub`): a node's
update carries the actions it ran and the reasoner's call records, a run's end its outcome. So
the manager and the nodes need no metrics code, and a metric can never fail a run.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from devops_agent.memory.run_repo import RunRepo
from devops_agent.orchestration.events import EventHub

log = logging.getLogger(__name__)
RESOLUTION_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600, 1800, 3600, 14400)


class Metrics:
    def __init__(self) -> None:
        self._http: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._received: dict[tuple[str, bool], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "devops_agent_http_requests_total",
            "HTTP requests by route and status code",
            ["route", "method", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "devops_agent_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.alerts = Counter(
            "devops_agent_alerts_received_total",
            "Alerts received on the webhook or from monitoring",
            ["status", "deduplicated"],
            registry=r,
        )
        self.alerts_truncated = Counter(
            "devops_agent_alerts_truncated_total",
            "Alerts that Alertmanager left out of notifications (truncatedAlerts: its max_alerts)",
            registry=r,
        )
        self.runs_started = Counter(
            "devops_agent_runs_started_total", "Graph runs started", registry=r
        )
        self.runs_finished = Counter(
            "devops_agent_runs_finished_total",
            "Graph runs finished by outcome",
            ["outcome"],
            registry=r,
        )
        self.decisions = Counter(
            "devops_agent_approval_decisions_total", "Approval decisions", ["decision"], registry=r
        )
        self.node_updates = Counter(
            "devops_agent_node_updates_total", "Node updates by node", ["node"], registry=r
        )
        self.runs_by_status = Gauge(
            "devops_agent_runs", "Runs by status (read at scrape time)", ["status"], registry=r
        )
        self.monitor_probes = Counter(
            "devops_agent_monitor_probes_total",
            "Monitoring probes by target and result",
            ["target", "result"],
            registry=r,
        )

        self.approvals_waiting = Gauge(
            "devops_agent_approvals_waiting",
            "Runs waiting for a person's decision (read at scrape time)",
            registry=r,
        )
        self.time_to_resolution = Histogram(
            "devops_agent_time_to_resolution_seconds",
            "From the first alert's startsAt to the run's end, for runs that ended resolved",
            buckets=RESOLUTION_BUCKETS,
            registry=r,
        )
        self.actions = Counter(
            "devops_agent_actions_total",
            "Actions by operation and result (succeeded, failed, skipped, refused, dry_run)",
            ["operation", "result"],
            registry=r,
        )
        self.reasoner_calls = Counter(
            "devops_agent_reasoner_calls_total",
            "Reasoner calls by reasoner (llm, rules) and step (diagnose, plan)",
            ["reasoner", "step"],
            registry=r,
        )
        self.reasoner_fallbacks = Counter(
            "devops_agent_reasoner_fallbacks_total",
            "Steps the rules reasoner answered in place of a failed LLM",
            ["step"],
            registry=r,
        )
        self.reasoner_errors = Counter(
            "devops_agent_reasoner_errors_total",
            "Reasoner calls that failed, by reasoner and error kind",
            ["reasoner", "kind"],
            registry=r,
        )
        self.reasoner_tokens = Counter(
            "devops_agent_reasoner_tokens_total",
            "LLM tokens by direction (input, output)",
            ["reasoner", "direction"],
            registry=r,
        )
        self.reasoner_latency = Histogram(
            "devops_agent_reasoner_seconds",
            "Time of one reasoner call",
            ["reasoner"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.webhook_requests = Counter(
            "devops_agent_webhook_requests_total",
            "Requests to /webhook/alerts by status code",
            ["code"],
            registry=r,
        )

    def observe_request(
        self, route: str, code: int, method: str = "POST", seconds: float = 0.0
    ) -> None:
        """One HTTP answer: counted and timed by route template, and by code for the webhook."""
        key = (route, method, code)
        children = self._http.get(key)
        if children is None:  # labels() takes a lock and builds a key: once per label set
            webhook = route == "/webhook/alerts"
            children = self._http[key] = (
                self.requests.labels(route=route, method=method, code=str(code)),
                self.latency.labels(route=route),
                self.webhook_requests.labels(code=str(code)) if webhook else None,
            )
        requests, latency, webhook_requests = children
        requests.inc()
        latency.observe(seconds)
        if webhook_requests is not None:
            webhook_requests.inc()

    def received(self, status: str, deduplicated: bool) -> None:
        """One alert received (webhook or monitoring)."""
        key = (status, deduplicated)
        child = self._received.get(key)
        if child is None:
            child = self._received[key] = self.alerts.labels(
                status=status, deduplicated=str(deduplicated).lower()
            )
        child.inc()

    def observe_update(self, update: Any) -> None:
        """Count the actions and reasoner calls that one node update carries."""
        if not isinstance(update, dict):
            return
        for action in update.get("actions") or []:
            self.actions.labels(
                operation=str(action.get("operation", "")), result=str(action.get("status", ""))
            ).inc()
        for call in update.get("reasoning") or []:
            self.observe_reasoning(call)

    def observe_reasoning(self, call: dict[str, Any]) -> None:
        """One call record (keys reasoner, step, fallback, error, tokens, latency_ms)."""
        reasoner, step = str(call.get("reasoner", "unknown")), str(call.get("step", "unknown"))
        self.reasoner_calls.labels(reasoner=reasoner, step=step).inc()
        if call.get("fallback"):
            self.reasoner_fallbacks.labels(step=step).inc()
        if call.get("error"):
            kind = str(call["error"]).split(":", 1)[0].strip()[:40] or "error"
            self.reasoner_errors.labels(reasoner=reasoner, kind=kind).inc()
        for direction in ("input", "output"):
            tokens = call.get(f"{direction}_tokens") or 0
            if tokens:
                self.reasoner_tokens.labels(reasoner=reasoner, direction=direction).inc(tokens)
        latency = call.get("latency_ms")
        if isinstance(latency, int | float):
            self.reasoner_latency.labels(reasoner=reasoner).observe(latency / 1000)

    def render(self) -> bytes:
        waiting = self.registry.get_sample_value(
            "devops_agent_runs", {"status": "awaiting_approval"}
        )
        self.approvals_waiting.set(waiting or 0)
        return generate_latest(self.registry)


def _parse(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class MeteredHub(EventHub):
    """The run event hub, counting what passes through it into `metrics`."""

    def __init__(self, metrics: Metrics, repo: RunRepo) -> None:
        super().__init__()
        self.metrics = metrics
        self.repo = repo
        self._tasks: set[asyncio.Task[None]] = set()

    def publish(self, run_id: str, event: str, data: dict[str, Any]) -> None:
        try:
            if event == "update":
                self.metrics.observe_update(data.get("update"))
            elif event == "end" and data.get("outcome") == "resolved":
                task = asyncio.create_task(self._resolved(run_id, datetime.now(UTC)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception:  # a metric must never fail a run
            log.exception("metrics for run %s", run_id)
        super().publish(run_id, event, data)

    async def _resolved(self, run_id: str, ended: datetime) -> None:
        """Time from the first firing alert's startsAt (Alertmanager's clock) to the end."""
        try:
            rows = (await self.repo.alerts_of([run_id])).get(run_id, [])
        except Exception:
            log.exception("metrics: alerts of run %s", run_id)
            return
        starts = [t for row in rows if row.status == "firing" and (t := _parse(row.starts_at))]
        if starts:
            self.metrics.time_to_resolution.observe(max(0.0, (ended - min(starts)).total_seconds()))
