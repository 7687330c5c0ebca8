"""Prometheus metrics, on a registry per app instance (several apps may live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
