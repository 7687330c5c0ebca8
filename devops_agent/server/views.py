"""The JSON shapes of CONTRACT.md, built from a run's row, its alerts and its graph state."""

from __future__ import annotations

from typing import Any

from devops_agent.approvals import approval_view as request_shape
from devops_agent.memory.runs import AlertRecord, RunRecord
from devops_agent.redact import redact_data


def alert_view(row: AlertRecord) -> dict[str, Any]:
    return {
        "alertname": row.alertname,
        "fingerprint": row.fingerprint,
        "status": row.status,
        "labels": dict(row.labels or {}),
        "annotations": dict(row.annotations or {}),
        "startsAt": row.starts_at,
    }


def diagnosis_view(state: dict[str, Any]) -> dict[str, Any] | None:
    diagnosis = state.get("diagnosis")
    if not diagnosis:
        return None
    gathered = [e for e in state.get("evidence") or [] if isinstance(e, dict)]
    by_summary = {str(e.get("summary")): str(e.get("source", "")) for e in gathered}
    rests_on = [str(s) for s in diagnosis.get("evidence") or []]
    if rests_on:
        evidence = [{"source": by_summary.get(s, "reasoner"), "summary": s} for s in rests_on]
    else:
        evidence = [
            {"source": str(e.get("source", "")), "summary": str(e.get("summary", ""))}
            for e in gathered
        ]
    return {
        "category": diagnosis.get("category"),
        "root_cause": diagnosis.get("root_cause"),
        "confidence": diagnosis.get("confidence"),
        "evidence": evidence,
        "reasoner": diagnosis.get("reasoner"),
    }


def plan_view(state: dict[str, Any]) -> dict[str, Any] | None:
    plan = state.get("plan")
    if not plan:
        return None
    steps = [
        {
            "operation": s.get("operation"),
            "target": s.get("target"),
            "params": s.get("params") or {},
            "risk": s.get("risk"),
            "rationale": s.get("rationale", ""),
        }
        for s in plan.get("steps") or []
    ]
    return {
        "steps": steps,
        "requires_approval": bool(plan.get("requires_approval")),
        "why": plan.get("why", ""),
    }


def approval_view(state: dict[str, Any]) -> dict[str, Any] | None:
    approval = state.get("approval")
    if not approval:
        return None
    keys = ("decision", "approver", "comment", "at", "request_id", "override")
    return {key: approval.get(key) for key in keys}


def request_view(row: RunRecord, state: dict[str, Any]) -> dict[str, Any] | None:
    """What the run waits for a person on (while it waits), with its request_id and reason."""
    request = row.approval_request or state.get("approval_request")
    if not request or row.status != "awaiting_approval":
        return None
    return request_shape(request)


def action_view(action: dict[str, Any]) -> dict[str, Any]:
    keys = ("operation", "target", "params", "status", "started_at", "finished_at", "output")
    return {
        **{key: action.get(key) for key in keys},
        "reconciled": bool(action.get("reconciled")),
        "reason": action.get("reason"),
    }


def validation_view(state: dict[str, Any]) -> dict[str, Any] | None:
    validation = state.get("validation")
    if not validation:
        return None
    return {
        "healthy": bool(validation.get("healthy")),
        "checks": [
            {k: c.get(k) for k in ("target", "healthy", "summary")}
            for c in validation.get("checks") or []
        ],
        "settle_until": validation.get("settle_until"),
        "held": validation.get("held"),
        "alerts_cleared": validation.get("alerts_cleared"),
    }


def run_view(row: RunRecord, alerts: list[AlertRecord], state: dict[str, Any]) -> dict[str, Any]:
    """One run, as `GET /runs/{run_id}` returns it, masked again on its way out (the API is an
    exit, devops_agent/redact.py). A finished run is shown from its summary, the same whether its
    checkpoints are still there or not."""
    if row.summary is not None:
        state = row.summary
    return redact_data(
        {
            "run_id": row.run_id,
            "incident_id": row.incident_id,
            "service": row.service,
            "status": row.status,
            "outcome": row.outcome or (state.get("outcome") if row.status == "completed" else None),
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "alerts": [alert_view(a) for a in alerts],
            "diagnosis": diagnosis_view(state),
            "plan": plan_view(state),
            "approval": approval_view(state),
            "approval_request": request_view(row, state),
            "actions": [action_view(a) for a in state.get("actions") or []],
            "validation": validation_view(state),
            "attempts": int(state.get("attempts") or 0),
            "escalation": state.get("escalation"),
            "escalation_reason": state.get("escalation_reason"),
            "handled_by": state.get("handled_by"),
            "truncated_alerts": row.truncated_alerts or 0,
            "error": row.error,
        }
    )


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The state keys whose value differs between two checkpoints."""
    return sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))
