"""The approval request a person decides on, one shape for every place that shows it.

`approval_view` is what `GET /approvals`, `GET /runs/{id}` (its `approval_request`), the
console, the CLI and the notifications show: the diagnosis with the evidence items it rests on,
the plan with each step's risk, why approval is needed (the policy findings that matched, their
reason codes, the policy's version), the alternatives considered and why not, what learning
says about the plan, and the deadline. `override_plan` checks an alternative a person chose
against the registry and the policy, like any plan, before the run takes it.
"""

from __future__ import annotations

from typing import Any

from devops_agent.context import AgentContext
from devops_agent.nodes.common import target_keys
from devops_agent.policy import decide
from devops_agent.redact import redact_data
from devops_agent.state import Plan, PlanStep

STEP_KEYS = ("operation", "target", "params", "risk", "rationale")


def _steps(steps: list[Any] | None) -> list[dict[str, Any]]:
    return [
        {key: (s.get(key) if key != "params" else s.get(key) or {}) for key in STEP_KEYS}
        for s in steps or []
        if isinstance(s, dict)
    ]


def approval_view(request: dict[str, Any]) -> dict[str, Any]:
    """The request as a person reads it (redacted: it leaves the process)."""
    diagnosis = request.get("diagnosis") or {}
    plan = request.get("plan") or {}
    evidence = request.get("evidence")
    if evidence is None:  # a request stored before the evidence items were kept with it
        evidence = [
            {"source": "reasoner", "summary": str(s)} for s in diagnosis.get("evidence") or []
        ]
    view = {
        "request_id": request.get("request_id"),
        "run_id": request.get("run_id"),
        "service": request.get("service"),
        "attempt": request.get("attempt"),
        "scope": request.get("scope"),
        "reason": request.get("reason"),
        "reasons": list(request.get("reasons") or []),
        "why": request.get("why"),
        "policy": request.get("policy"),
        "deadline": request.get("deadline"),
        "diagnosis": {
            "category": diagnosis.get("category"),
            "root_cause": diagnosis.get("root_cause"),
            "confidence": diagnosis.get("confidence"),
            "reasoner": diagnosis.get("reasoner"),
            "evidence": evidence,
        },
        "plan": {
            "steps": _steps(plan.get("steps")),
            "why": plan.get("why", ""),
            "workflow": plan.get("workflow"),
            "phase": plan.get("phase"),
            "confidence": plan.get("confidence"),
        },
        "alternatives": [
            {
                "id": a.get("id"),
                "workflow": a.get("workflow"),
                "phase": a.get("phase"),
                "steps": _steps(a.get("steps")),
                "why_not": a.get("why_not", ""),
            }
            for a in request.get("alternatives") or []
            if isinstance(a, dict)
        ],
        "learning": [str(line) for line in request.get("learning") or []],
    }
    return redact_data(view)


async def override_plan(
    ctx: AgentContext, request: dict[str, Any], choice: int
) -> dict[str, Any] | str:
    """The alternative `choice` of the request as an override ({alternative, plan}), or why it
    cannot be taken: not offered, not valid for the registry, or refused by the policy."""
    offered = [a for a in request.get("alternatives") or [] if isinstance(a, dict)]
    found = next((a for a in offered if a.get("id") == choice), None)
    if found is None:
        ids = ", ".join(str(a.get("id")) for a in offered) or "none"
        return f"alternative {choice} is not offered by this request (offered: {ids})"
    steps: list[PlanStep] = []
    for raw in found.get("steps") or []:
        operation = str(raw.get("operation"))
        spec = ctx.registry.spec(operation)
        if spec is None:
            return f"{operation!r} is not an operation of the registry"
        params = dict(raw.get("params") or {})
        parsed = ctx.registry.validate(operation, params)
        if isinstance(parsed, str):
            return f"{operation} on {raw.get('target')}: {parsed}"
        steps.append(
            PlanStep(
                operation=operation,
                target=str(raw.get("target")),
                params=parsed.model_dump(mode="json", exclude_none=True),
                risk=spec.risk,  # from the registry, never from the stored request
                rationale=str(raw.get("rationale") or ""),
            )
        )
    if not steps:
        return "the alternative has no steps"
    plan_before = request.get("plan") or {}
    plan = Plan(
        action="remediate",
        steps=steps,
        why=f"override: a person chose alternative {choice} ({found.get('why_not', '')})",
        confidence=float(plan_before.get("confidence") or 1.0),
        workflow=found.get("workflow"),
        phase=found.get("phase"),
        reasoner="person",
    )
    run_id = str(request.get("run_id") or "")
    category = (request.get("diagnosis") or {}).get("category")
    keys = await target_keys(ctx, steps)
    facts = await ctx.store.policy_facts(run_id, keys, ctx.settings, category)
    verdict = decide(plan, ctx.settings, ctx.policy, facts)
    if verdict.decision == "refuse":
        return f"the policy refuses it: {verdict.why}"
    return {"alternative": choice, "plan": plan.model_dump(mode="json")}
