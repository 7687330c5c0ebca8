"""Users over HTTP, for admins: `GET /users`, `POST /users` (the token in the answer, once),
`DELETE /users/{name}`. The same rules as `devops-agent users` (memory/users.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from devops_agent.memory.users import Role, UserError, Users

router = APIRouter()


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Role = "viewer"
    slack_id: Annotated[str, Field(max_length=32)] | None = None


class UserEntry(BaseModel):
    name: str
    role: str
    slack_id: str | None
    created_at: str


class UserList(BaseModel):
    users: list[UserEntry]


class Added(UserEntry):
    token: str = Field(description="shown only in this answer: only its hash is kept")


def _users(request: Request) -> Users:
    found: Users = request.app.state.users
    return found


@router.get("/users", summary="The users (admins only)", response_model=UserList)
async def list_users(request: Request) -> dict[str, Any]:
    rows = await _users(request).all()
    return {
        "users": [
            {"name": r.name, "role": r.role, "slack_id": r.slack_id, "created_at": r.created_at}
            for r in rows
        ]
    }


@router.post("/users", status_code=201, summary="Add a user (admins only)", response_model=Added)
async def add_user(body: NewUser, request: Request) -> dict[str, Any]:
    users = _users(request)
    try:
        token = await users.add(body.name, body.role, body.slack_id)
    except UserError as exc:
        raise HTTPException(409 if "exists" in str(exc) else 422, str(exc)) from None
    (row,) = [r for r in await users.all() if r.name == body.name]
    return {
        "name": row.name,
        "role": row.role,
        "slack_id": row.slack_id,
        "created_at": row.created_at,
        "token": token,
    }


@router.delete(
    "/users/{name}", status_code=204, summary="Remove a user (admins only)", responses={404: {}}
)
async def remove_user(name: str, request: Request) -> None:
    if len(name) > 100 or not await _users(request).remove(name):
        raise HTTPException(404, f"no user {name[:100]!r}")
