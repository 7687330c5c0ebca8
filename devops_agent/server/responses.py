"""A response model for every JSON endpoint: the shapes of CONTRACT.md, typed at the top level.

Nested parts whose shape the contract spells out field by field (a diagnosis, a plan, an
action) are typed too; parts that are open by nature (a monitoring target, a check's data) stay
mappings. FastAPI validates every answer against these and documents them in /openapi.json.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Health(BaseModel):
    status: str


class Backend(BaseModel):
    name: str
    reachable: bool
    detail: str


class Monitoring(BaseModel):
    running: bool
    targets: int
    cycles: int


class Watcher(BaseModel):
    """The events watcher (issue 20); only `enabled` when WATCH_EVENTS is off."""

    enabled: bool
    running: bool | None = None
    connected: bool | None = None
    engine: str | None = None
    docker_host: str | None = None
    connects: int | None = None
    events: int | None = None
    alerts_sent: int | None = None
    last_event_at: str | None = None
    last_error: str | None = None


class Notifications(BaseModel):
    url_set: bool
    backlog: int | None


class Status(BaseModel):
    service: str
    version: str
    environment: str
    reasoner: str
    safety_mode: bool
    kill_switch: dict[str, Any] | None
    backend: Backend
    database: dict[str, Any]
    monitoring: Monitoring
    watcher: Watcher
    runs: dict[str, int]
    notifications: Notifications


class MonitoringStatus(BaseModel):
    running: bool
    interval: float
    cycles: int
    last_cycle_at: str | None
    targets: list[dict[str, Any]]
    started: bool | None = None
    stopped: bool | None = None


class MonitoringCycle(BaseModel):
    cycle: int
    at: str
    targets: list[dict[str, Any]]
    alerts_sent: int
    intake: dict[str, Any] | None


class DockerView(BaseModel):
    backend: str
    reachable: bool
    detail: str
    server_version: str | None = None
    containers_running: int | None = None
    containers: list[dict[str, Any]] | None = None
    error: str | None = None


class PatternView(BaseModel):
    service: str
    category: str
    operation: str
    held: int
    did_not_hold: int
    approved_held_in_a_row: int
    promoted: bool
    changed_at: str | None


class Patterns(BaseModel):
    patterns: list[PatternView]


class RecentAction(BaseModel):
    run_id: str
    attempt: int
    step: int
    operation: str
    target: str
    status: str
    output: str
    started_at: str
    finished_at: str | None


class OrchestratorStatus(BaseModel):
    max_concurrent_runs: int
    executing: list[str]
    queued: int
    runs: dict[str, int]
    recent_actions: list[RecentAction]


class AlertView(BaseModel):
    alertname: str
    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: str  # noqa: N815 (Alertmanager's name)


class EvidenceView(BaseModel):
    source: str
    summary: str


class DiagnosisView(BaseModel):
    category: str | None
    root_cause: str | None
    confidence: float | None
    evidence: list[EvidenceView]
    reasoner: str | None


class StepView(BaseModel):
    operation: str | None
    target: str | None
    params: dict[str, Any]
    risk: str | None
    rationale: str


class PlanView(BaseModel):
    steps: list[StepView]
    requires_approval: bool
    why: str


class ApprovalView(BaseModel):
    decision: str | None
    approver: str | None
    comment: str | None
    at: str | None
    request_id: str | None
    override: dict[str, Any] | None = None


class ActionView(BaseModel):
    operation: str | None
    target: str | None
    params: dict[str, Any] | None
    status: str | None
    started_at: str | None
    finished_at: str | None
    output: str | None
    reconciled: bool
    reason: str | None


class ValidationView(BaseModel):
    healthy: bool
    checks: list[dict[str, Any]]
    settle_until: str | None
    held: bool | None
    alerts_cleared: bool | None


class RunView(BaseModel):
    run_id: str
    incident_id: str
    service: str
    status: str
    outcome: str | None
    created_at: str
    updated_at: str
    alerts: list[AlertView]
    diagnosis: DiagnosisView | None
    plan: PlanView | None
    approval: ApprovalView | None
    approval_request: dict[str, Any] | None
    actions: list[ActionView]
    validation: ValidationView | None
    attempts: int
    escalation: str | None
    escalation_reason: str | None
    handled_by: str | None
    truncated_alerts: int
    error: str | None


class RunList(BaseModel):
    runs: list[RunView]
    next: str | None


class Checkpoint(BaseModel):
    checkpoint_id: str | None
    step: int | None
    source: str | None
    node: str | None
    time: str | None
    changed: list[str]
    next: list[str]


class History(BaseModel):
    run_id: str
    checkpoints: list[Checkpoint]


class ApprovalEntry(BaseModel):
    run_id: str
    incident_id: str
    service: str
    waiting_since: str | None
    request_id: str | None
    reason: str | None
    reasons: list[dict[str, Any]]
    deadline: str | None
    why: str | None
    policy: str | None = None
    diagnosis: dict[str, Any] | None
    plan: dict[str, Any] | None
    alternatives: list[dict[str, Any]] = []
    learning: list[str] = []
    resume: str


class Approvals(BaseModel):
    approvals: list[ApprovalEntry]
    next: str | None


class ResumeAccepted(BaseModel):
    run_id: str
    status: str
    decision: str
    approver: str
