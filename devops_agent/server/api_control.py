"""The kill switch: `POST /control/pause-actions` and `POST /control/resume-actions`.

It is the store control `actions_paused`, which every replica's policy reads just before each
decision, so pausing holds every mutating step for a person everywhere at once. Who flipped it,
when and why goes into the control row and the audit trail. The actor and reason are stored as
given and never interpreted.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from devops_agent.alertmanager import Storable
from devops_agent.memory.users import ADMIN, User
from devops_agent.server.auth import user_of
from devops_agent.server.deps import Services, services

router = APIRouter()
Svc = Annotated[Services, Depends(services)]
KILL_SWITCH = "actions_paused"
Actor = Annotated[str, Field(min_length=1, max_length=200), Storable]
Reason = Annotated[str, Field(max_length=2000), Storable]


class ControlBody(BaseModel):
    """Optional: why. The actor is the authenticated user; a different `actor` is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    actor: Actor | None = None
    reason: Reason = ""


class KillSwitch(BaseModel):
    actions_paused: bool
    updated_by: str | None
    updated_at: str | None


async def kill_switch(svc: Services) -> KillSwitch:
    """The kill switch as the store has it (never set: not paused)."""
    row = await svc.agent.ctx.store.control(KILL_SWITCH)
    if row is None:
        return KillSwitch(actions_paused=False, updated_by=None, updated_at=None)
    return KillSwitch(
        actions_paused=row.value == "true", updated_by=row.updated_by, updated_at=row.updated_at
    )


async def flip(
    svc: Services, user: User, paused: bool, reason: str = "", client: str | None = None
) -> KillSwitch:
    """Set the kill switch as `user` (an admin), into the control row and the audit trail."""
    ctx = svc.agent.ctx
    await ctx.store.set_control(KILL_SWITCH, "true" if paused else "false", by=user.name)
    await ctx.audit.append(
        run_id="-",
        kind="control",
        actor=user.name,
        detail={"control": KILL_SWITCH, "value": paused, "reason": reason, "client": client},
    )
    return await kill_switch(svc)


async def _flip(svc: Services, request: Request, paused: bool, body: ControlBody | None) -> Any:
    body = body or ControlBody()
    user = user_of(request.scope) or User(ADMIN, "admin")
    if body.actor is not None and body.actor != user.name:
        return JSONResponse(
            {
                "detail": f"actor: {body.actor!r} is not you: the actor is the authenticated "
                f"user ({user.name}); leave it out"
            },
            status_code=422,
        )
    client = request.client.host if request.client else None
    return await flip(svc, user, paused, body.reason, client)


OptionalBody = Annotated[ControlBody | None, Body()]


@router.post(
    "/control/pause-actions",
    summary="Kill switch on: every mutating step waits for a person",
    response_model=KillSwitch,
)
async def pause_actions(svc: Svc, request: Request, body: OptionalBody = None) -> Any:
    return await _flip(svc, request, True, body)


@router.post(
    "/control/resume-actions",
    summary="Kill switch off: the policy alone decides again",
    response_model=KillSwitch,
)
async def resume_actions(svc: Svc, request: Request, body: OptionalBody = None) -> Any:
    return await _flip(svc, request, False, body)
