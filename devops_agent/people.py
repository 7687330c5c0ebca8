"""Commands for people: `users add|list|remove` (on the database) and `approvals`,
`approve RUN`, `reject RUN` (on a running service at DEVOPS_AGENT_URL, as the user whose token
DEVOPS_AGENT_TOKEN is)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx

from devops_agent.config import Settings
from devops_agent.errors import short_error
from devops_agent.memory.users import UserError, Users
from devops_agent.redact import redact

DEFAULT_URL = "http://127.0.0.1:8001"
TIMEOUT = 15.0


def users_command(
    settings: Settings, action: str, name: str | None, role: str, slack_id: str | None
) -> int:
    return asyncio.run(_users(settings, action, name, role, slack_id))


async def _users(
    settings: Settings, action: str, name: str | None, role: str, slack_id: str | None
) -> int:
    users = Users.from_url(settings.resolved_database_url)
    try:
        if action == "list":
            print("name\trole\tslack_id\tcreated_at")
            for row in await users.all():
                print(f"{row.name}\t{row.role}\t{row.slack_id or '-'}\t{row.created_at}")
            return 0
        if not name:
            print(f"error: users {action} needs a NAME", file=sys.stderr)
            return 2
        if action == "add":
            token = await users.add(name, role, slack_id)
            print(f"added {name} ({role}). Their token, shown only this once:", file=sys.stderr)
            print(token)
            return 0
        if not await users.remove(name):
            print(f"error: no user {name!r}", file=sys.stderr)
            return 1
        print(f"removed {name}")
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await users.close()


def _client(settings: Settings) -> httpx.Client:
    url = (settings.devops_agent_url or DEFAULT_URL).rstrip("/")
    token = settings.devops_agent_token.get_secret_value() if settings.devops_agent_token else ""
    if not token:
        raise SystemExit("error: DEVOPS_AGENT_TOKEN is unset: set it to your user's token")
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
        trust_env=False,
    )


def show_request(request: dict[str, Any]) -> None:
    """Print an approval request as a person reads it."""
    d = request.get("diagnosis") or {}
    print(
        f"run {request.get('run_id')} on {request.get('service')} (request {request.get('request_id')})"
    )
    print(f"  diagnosis: {d.get('category')} ({d.get('confidence')}): {d.get('root_cause')}")
    for item in d.get("evidence") or []:
        print(f"    evidence [{item.get('source')}] {item.get('summary')}")
    for step in (request.get("plan") or {}).get("steps") or []:
        print(f"  step: {step.get('operation')} {step.get('target')} ({step.get('risk')} risk)")
    print(
        f"  why approval: {request.get('why')} [{request.get('reason')}; {request.get('policy')}]"
    )
    for alt in request.get("alternatives") or []:
        steps = ", ".join(f"{s.get('operation')} {s.get('target')}" for s in alt.get("steps") or [])
        print(f"  alternative {alt.get('id')}: {steps} (not chosen: {alt.get('why_not')})")
    for line in request.get("learning") or []:
        print(f"  learned: {line}")
    print(f"  deadline: {request.get('deadline')}")


def _fail(response: httpx.Response) -> int:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text[:200]
    print(f"error: HTTP {response.status_code}: {redact(str(detail))}", file=sys.stderr)
    return 1


def approvals_command(settings: Settings) -> int:
    """List what waits for a decision."""
    try:
        with _client(settings) as client:
            response = client.get("/approvals")
            if response.status_code != 200:
                return _fail(response)
            waiting = response.json()["approvals"]
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the service: {short_error(exc)}", file=sys.stderr)
        return 2
    if not waiting:
        print("nothing waits for a decision")
    for request in waiting:
        show_request(request)
    return 0


def decide_command(
    settings: Settings, run_id: str, decision: str, comment: str, override: int | None = None
) -> int:
    """Print the request, then approve or reject it (as DEVOPS_AGENT_TOKEN's user)."""
    try:
        with _client(settings) as client:
            response = client.get(f"/runs/{run_id}")
            if response.status_code != 200:
                return _fail(response)
            request = response.json().get("approval_request")
            if not request:
                print(f"error: run {run_id} is not waiting for approval", file=sys.stderr)
                return 1
            show_request(request)
            body: dict[str, Any] = {
                "decision": decision,
                "comment": comment,
                "request_id": request.get("request_id"),
            }
            if override is not None:
                body["override"] = override
            response = client.post(f"/runs/{run_id}/resume", json=body)
            if response.status_code != 202:
                return _fail(response)
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the service: {short_error(exc)}", file=sys.stderr)
        return 2
    print(f"{decision}d by {response.json().get('approver')}: the run goes on")
    return 0
