"""Notifications to people: what they say, and one POST of one to NOTIFY_WEBHOOK_URL.

They are not sent from here: a notice is stored in the outbox with the state change it tells
about (memory/outbox.py) and delivered, at least once, by server/outbox.py. Each one carries
its `delivery_id` (in the body and the `X-Delivery-Id` header) so a receiver can drop a repeat.
The JSON is Slack-compatible (`text`) with the fields a script needs beside it.
"""

from __future__ import annotations

from typing import Any

import httpx

from devops_agent.redact import redact_data

TIMEOUT = 5.0


def approval_notice(request: dict[str, Any], resume_url: str) -> dict[str, Any]:
    plan = request.get("plan") or {}
    steps = "; ".join(
        f"{s.get('operation')} {s.get('target')} ({s.get('risk')} risk)"
        for s in plan.get("steps") or []
    )
    diagnosis = request.get("diagnosis") or {}
    service = request.get("service") or "unknown service"
    return redact_data(
        {
            "text": f"[devops-agent] {service}: approval needed for {steps or 'the plan'}. "
            f"Diagnosis: {diagnosis.get('category')}: {diagnosis.get('root_cause')}. "
            f"Why: {request.get('why')}. Decide: POST {resume_url}",
            "kind": "approval_request",
            "run_id": request.get("run_id"),
            "service": request.get("service"),
            "category": diagnosis.get("category"),
            "root_cause": diagnosis.get("root_cause"),
            "why": request.get("why"),
            "steps": [
                {k: s.get(k) for k in ("operation", "target", "risk")}
                for s in plan.get("steps") or []
                if isinstance(s, dict)
            ],
            "request_id": request.get("request_id"),
            "reason": request.get("reason"),
            "deadline": request.get("deadline"),
            "resume_url": resume_url,
            # The whole request (devops_agent/approvals.py), as GET /approvals shows it.
            "diagnosis": diagnosis,
            "plan": plan,
            "reasons": request.get("reasons") or [],
            "policy": request.get("policy"),
            "alternatives": request.get("alternatives") or [],
            "learning": request.get("learning") or [],
        }
    )


def escalation_notice(
    run_id: str, service: str, outcome: str, why: str, category: str | None, reason: str | None
) -> dict[str, Any]:
    return redact_data(
        {
            "text": f"[devops-agent] {service or 'unknown service'}: {outcome}. {why}",
            "kind": "escalation",
            "run_id": run_id,
            "service": service,
            "outcome": outcome,
            "category": category,
            "reason": reason,
        }
    )


async def post(url: str, payload: dict[str, Any]) -> str | None:
    """POST one notice; None when the receiver took it (2xx), else what went wrong."""
    headers = {"X-Delivery-Id": str(payload.get("delivery_id", ""))}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as client:
            response = await client.post(url, json=payload, headers=headers)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if response.status_code < 300 else f"HTTP {response.status_code}"
