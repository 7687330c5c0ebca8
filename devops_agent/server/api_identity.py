"""`GET /whoami`: the authenticated user of the caller (its name and role); `devops-agent mcp`
asks it to know which tools its user may have."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from devops_agent.server.auth import user_of

router = APIRouter()


class WhoAmI(BaseModel):
    name: str
    role: str


@router.get("/whoami", summary="The user of the caller's token", response_model=WhoAmI)
async def whoami(request: Request) -> WhoAmI:
    who = user_of(request.scope)
    if who is None:
        raise HTTPException(401, "unauthorized")
    return WhoAmI(name=who.name, role=who.role)
