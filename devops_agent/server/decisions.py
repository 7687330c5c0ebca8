"""The one path a person's decision takes, from the API, the console and Slack alike.

`decide` checks the role, the run, the request id and an override (an alternative of the
request, validated against the registry and the policy like any plan), then claims the run
for the decision (exactly one of concurrent decisions wins). The approver is the
authenticated user, never a name the caller types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from devops_agent.approvals import override_plan
from devops_agent.memory.users import User
from devops_agent.server.deps import Services


@dataclass
class Decided:
    """The answer to a decision: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 202


async def decide(
    svc: Services,
    run_id: str,
    decision: Literal["approve", "reject"],
    user: User | None,
    comment: str = "",
    request_id: str | None = None,
    override: int | None = None,
) -> Decided:
    """Record `user`'s decision on the run's current approval request."""
    if user is None:
        return Decided(401, {"detail": "unauthorized"})
    if not user.may("approver"):
        return Decided(403, {"detail": f"{user.name} is a {user.role}: only approvers decide"})
    row = await svc.repo.get(run_id) if len(run_id) <= 128 and "\x00" not in run_id else None
    if row is None:
        return Decided(404, {"detail": f"no run {run_id!r}"})
    answer: dict[str, Any] = {
        "decision": decision,
        "approver": user.name,
        "comment": comment or "",
        "request_id": request_id or "",
    }
    if override is not None:
        if decision != "approve":
            return Decided(422, {"detail": "override: only an approval can choose an alternative"})
        request = row.approval_request or await svc.agent.pending_approval(run_id) or {}
        chosen = await override_plan(svc.agent.ctx, request, override)
        if isinstance(chosen, str):
            return Decided(422, {"detail": f"override: {chosen}", "reason": "policy_forbid"})
        answer["override"] = chosen
    claimed = await svc.manager.decide(run_id, answer)
    if claimed.stale:
        return Decided(
            409,
            {
                "detail": f"request {request_id} is not the one run {run_id} waits on now "
                f"({claimed.current_request}): read GET /approvals again",
                "reason": "stale_request",
                "request_id": claimed.current_request,
            },
        )
    if claimed.late:
        return Decided(
            409,
            {
                "detail": f"run {run_id} waited past its deadline (APPROVAL_TIMEOUT): it expires now",
                "reason": "expired",
            },
        )
    if not claimed:
        row = await svc.repo.get(run_id)
        status = row.status if row else "gone"
        return Decided(
            409, {"detail": f"run {run_id} is not waiting for approval (status {status})"}
        )
    return Decided(
        202,
        {"run_id": run_id, "status": "running", "decision": decision, "approver": user.name},
    )
