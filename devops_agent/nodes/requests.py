"""The approval request a person decides on, and the id that binds a decision to it.

A request is identified by the run, the attempt, what it asks about (the plan, or one step of
it that must wait again) and the plan itself. A decision carries the id of the request it
answers; a run waiting on another request (its second attempt, say) waits for a person again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from devops_agent.policy import Finding
from devops_agent.state import IncidentState, Plan, RunState


def request_id(run_id: str, attempt: int, scope: str, plan: Plan) -> str:
    body = json.dumps(
        {"run": run_id, "attempt": attempt, "scope": scope, "plan": plan.model_dump(mode="json")},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()[:20]


def evidence_of(run: RunState) -> list[dict[str, str]]:
    """The evidence items the diagnosis rests on (all that was gathered when it names none)."""
    gathered = {e.summary: e.source for e in run.evidence}
    rests_on = [str(s) for s in (run.raw.get("diagnosis") or {}).get("evidence") or []]
    if rests_on:
        return [{"source": gathered.get(s, "reasoner"), "summary": s} for s in rests_on]
    return [{"source": e.source, "summary": e.summary} for e in run.evidence]


def approval_request(
    state: IncidentState,
    plan: Plan,
    findings: list[Finding],
    *,
    policy: str,
    timeout: int,
    attempt: int,
    scope: str = "plan",
    alternatives: list[dict[str, Any]] | None = None,
    learning: list[str] | None = None,
) -> dict[str, Any]:
    """What a person sees: the diagnosis, the steps, why approval is needed (with the reason
    codes), the policy's version and a deadline."""
    run = RunState(state)
    run_id = run.run_id
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    return {
        "request_id": request_id(run_id, attempt, scope, plan),
        "run_id": run_id,
        "service": run.service,
        "attempt": attempt,
        "scope": scope,
        "diagnosis": run.raw.get("diagnosis"),
        "evidence": evidence_of(run),
        "plan": plan.model_dump(mode="json"),
        "why": "; ".join(dict.fromkeys(f.message for f in findings)),
        "reason": findings[0].code if findings else None,
        "reasons": [f.as_dict() for f in findings],
        "policy": policy,
        "alternatives": alternatives or [],
        "learning": learning or [],
        "deadline": deadline.isoformat(),
        "answer": {
            "decision": "approve | reject",
            "approver": "optional: the authenticated user decides",
            "comment": "optional",
            "request_id": "this request's id (optional; a stale one is refused)",
            "override": "optional: the id of an alternative to approve instead of the plan",
        },
    }
