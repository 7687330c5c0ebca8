"""`GET /whoami`: who the caller's token is (the identity seam, devops_agent/identity.py);
`devops-agent mcp` asks it to know which tools its user may have."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from devops_agent.identity import Directory
from devops_agent.server.auth import bearer

router = APIRouter()


class WhoAmI(BaseModel):
    name: str
    role: str


@router.get("/whoami", summary="The user of the caller's token", response_model=WhoAmI)
async def whoami(request: Request) -> WhoAmI:
    directory: Directory = request.app.state.directory
    token = bearer(request.scope)
    who = await directory.user_for_token(token.decode()) if token else None
    if who is None:
        raise HTTPException(401, "unauthorized")
    return WhoAmI(name=who.name, role=who.role)
