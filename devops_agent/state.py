"""The graph state and the models inside it.

The state holds plain JSON-able dicts (each the `model_dump(mode="json")` of a model here), so
checkpoints are small, portable between savers and readable by LangGraph Studio. Nodes parse
what they read with the models and dump what they write.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field

from devops_agent import labels

Category = Literal[
    "crash",
    "crash_loop",
    "hang",
    "memory_exhaustion",
    "cpu_saturation",
    "disk_full",
    "config_error",
    "dependency_failure",
    "overload",
    "no_fault",
    "unknown",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]

Outcome = Literal["resolved", "escalated", "rejected", "no_action", "superseded"]
ActionStatus = Literal["succeeded", "failed", "skipped", "refused", "dry_run"]
# The statuses of a step that happened: `skipped` is a step that had succeeded before the node
# was re-run on resume. Rollback, crash-loop detection, learning and the breaker read both.
HAPPENED: tuple[str, ...] = ("succeeded", "skipped")
Decision = Literal["approve", "reject", "expired"]


def utcnow() -> str:
    """Now, as an ISO 8601 UTC string."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Alert(BaseModel):
    """One alert as the incident keeps it."""

    alertname: str = ""
    fingerprint: str = ""
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""  # noqa: N815 (the Alertmanager name, kept as users see it)


class Target(BaseModel):
    """The service an incident is about, as the backend resolved it.

    `key` is its identity (`container:<name>`, `compose:<project>/<service>`): limits, locks and
    joins are keyed on it, never on an alert's label, so two names for one thing are one target.
    """

    name: str
    kind: Literal["container", "compose_service", "swarm_service"]
    containers: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    project: str | None = None
    key: str = ""

    @property
    def scalable(self) -> bool:
        return self.kind in ("compose_service", "swarm_service")

    @property
    def depends_on(self) -> list[str]:
        return labels.depends_on(self.labels)

    @property
    def params(self) -> dict[str, Any]:
        """How an operation names this target (with its project where a name may need one)."""
        if self.kind == "compose_service" and self.project:
            return {"target": self.name, "project": self.project}
        return {"target": self.name}


class Unreachable(BaseModel):
    """The backend (an engine, a gateway) did not answer: whether a name is a target is unknown."""

    message: str


class Ambiguity(BaseModel):
    """A name that means more than one target (a Compose service in several projects)."""

    name: str
    matches: list[str]

    @property
    def message(self) -> str:
        return (
            f"{self.name!r} names {len(self.matches)} targets ({', '.join(self.matches)}): "
            "an alert label `project` (or `compose_project`) must say which"
        )


class Evidence(BaseModel):
    """One observation: which operation (or source) produced it, a summary, and its data."""

    source: str
    target: str = ""
    summary: str
    ok: bool = True
    data: dict[str, Any] = Field(default_factory=dict)


class Diagnosis(BaseModel):
    category: Category
    root_cause: str
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list, description="summaries it rests on")
    reasoner: str = "rules"


class PlanStep(BaseModel):
    operation: str
    target: str
    params: dict[str, Any] = Field(default_factory=dict)
    risk: Literal["low", "medium", "high"] = "low"
    rationale: str = ""

    @property
    def named(self) -> dict[str, Any]:
        """How an operation names this step's target (with its project, when it has one)."""
        project = self.params.get("project")
        return {"target": self.target, **({"project": project} if project else {})}


class Plan(BaseModel):
    """What to do. `action` tells the graph where to go; `steps` only matter for `remediate`."""

    action: Literal["remediate", "no_action", "escalate"]
    steps: list[PlanStep] = Field(default_factory=list)
    requires_approval: bool = False
    why: str = ""
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    reasoner: str = "rules"
    reason: str | None = None  # the reason code of an escalation
    # The workflow (devops_agent/workflows) and the phase the steps come from, what the phase's
    # success means and what follows its failure: the next phase, a rollback, an escalation.
    workflow: str | None = None
    phase: int | None = None
    success: dict[str, Any] = Field(default_factory=dict)
    on_failure: Literal["next", "rollback", "escalate"] = "next"


class Approval(BaseModel):
    decision: Decision
    approver: str = ""
    comment: str = ""
    at: str = Field(default_factory=utcnow)
    policy: str = ""
    request_id: str = ""  # the approval request this decision answered
    override: dict[str, Any] | None = None  # the alternative approved instead of the plan


class ActionRecord(BaseModel):
    attempt: int
    step: int
    operation: str
    target: str
    params: dict[str, Any] = Field(default_factory=dict)
    status: ActionStatus
    started_at: str | None = None
    finished_at: str | None = None
    output: str = ""
    snapshot: dict[str, Any] | None = Field(
        None, description="what the inverse needs, taken before"
    )
    rollback_of: int | None = Field(None, description="the step this action undoes")
    reconciled: bool = Field(
        False, description="interrupted by a crash, then found done in reality"
    )
    reason: str | None = Field(None, description="the reason code of a refusal")


class Validation(BaseModel):
    """What validate and settle saw. With VALIDATE_SETTLE, the first healthy probe opens a
    window (`settle_until`) that the fix must hold through: `held` is None until it ends."""

    healthy: bool
    checks: list[dict[str, Any]] = Field(default_factory=list)
    settle_until: str | None = None
    checked_at: str | None = None  # the window's last check
    held: bool | None = None
    alerts_cleared: bool | None = None  # Alertmanager's view, recorded, never deciding
    baseline: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="each target's containers when the window opened"
    )


class IncidentState(TypedDict, total=False):
    """The state of one run. Only `alerts` is required as input."""

    run_id: str
    alerts: list[dict[str, Any]]
    service: str | None
    target: dict[str, Any] | None
    triage: dict[str, Any]  # {"action": investigate | escalate | none, "reason": ...}
    evidence: list[dict[str, Any]]
    diagnosed_at: str | None  # when root_cause began gathering the evidence
    diagnosis: dict[str, Any] | None
    first_category: str | None  # the first diagnosis' category: what learn files the run under
    plan: dict[str, Any] | None
    approval: dict[str, Any] | None
    approval_request: dict[str, Any] | None  # set by approve when a person must decide
    actions: Annotated[list[dict[str, Any]], operator.add]
    validation: dict[str, Any] | None
    attempts: int
    outcome: Outcome | None
    escalation: str | None
    escalation_reason: str | None  # a reason code (devops_agent.policy.reasons)
    handled_by: str | None  # a joined run: the run that handled its fault
    notice: dict[str, Any] | None  # what escalate tells people (sent from the outbox)
    notes: Annotated[list[str], operator.add]  # what happened to the run outside its nodes
    # One entry per attempt whose fix was watched through the settle window: the operations it
    # ran and whether they held. A later attempt does not repeat what did not hold.
    tried: Annotated[list[dict[str, Any]], operator.add]
    reasoning: Annotated[list[dict[str, Any]], operator.add]  # one record per reasoner call


class RunState:
    """Typed reads of a run's state: nodes read it through these, never `state.get` by hand.

    The state itself stays plain JSON (the checkpoints); what a node returns is an
    `IncidentState` (a TypedDict), so mypy refuses a key that is not in the state.
    """

    def __init__(self, state: IncidentState) -> None:
        self.raw = state

    @property
    def run_id(self) -> str:
        return str(self.raw.get("run_id") or "")

    @property
    def service(self) -> str:
        return str(self.raw.get("service") or "")

    @property
    def attempts(self) -> int:
        return int(self.raw.get("attempts") or 0)

    @property
    def alerts(self) -> list[Alert]:
        return [Alert.model_validate(a) for a in self.raw.get("alerts") or []]

    @property
    def target(self) -> Target | None:
        raw = self.raw.get("target")
        return Target.model_validate(raw) if raw else None

    @property
    def evidence(self) -> list[Evidence]:
        return [Evidence.model_validate(e) for e in self.raw.get("evidence") or []]

    @property
    def diagnosis(self) -> Diagnosis | None:
        raw = self.raw.get("diagnosis")
        return Diagnosis.model_validate(raw) if raw else None

    @property
    def plan(self) -> Plan | None:
        raw = self.raw.get("plan")
        return Plan.model_validate(raw) if raw else None

    @property
    def approval(self) -> Approval | None:
        raw = self.raw.get("approval")
        return Approval.model_validate(raw) if raw else None

    @property
    def approval_request(self) -> dict[str, Any]:
        return dict(self.raw.get("approval_request") or {})

    @property
    def actions(self) -> list[ActionRecord]:
        return [ActionRecord.model_validate(a) for a in self.raw.get("actions") or []]

    @property
    def validation(self) -> Validation | None:
        raw = self.raw.get("validation")
        return Validation.model_validate(raw) if raw else None

    @property
    def escalation(self) -> str | None:
        return self.raw.get("escalation")

    @property
    def escalation_reason(self) -> str | None:
        return self.raw.get("escalation_reason")

    @property
    def diagnosed_at(self) -> str | None:
        return self.raw.get("diagnosed_at")

    @property
    def category(self) -> str | None:
        """What learning and the autonomy ladder file the run under: its first diagnosis."""
        diagnosis = self.raw.get("diagnosis") or {}
        return self.raw.get("first_category") or diagnosis.get("category")

    @property
    def tried(self) -> list[dict[str, Any]]:
        return list(self.raw.get("tried") or [])

    @property
    def outcome(self) -> Outcome | None:
        return self.raw.get("outcome")

    @property
    def handled_by(self) -> str | None:
        return self.raw.get("handled_by")
