"""The MCP server's tools (issue 16.2), with the official `mcp` SDK (MCPServer, mcp 2.x).

One set of tools for both transports: they read and decide through the service's own HTTP API
(a `Desk`), so `/mcp` inside the service and `devops-agent mcp` (stdio, for IDE assistants) apply
the same rules, and the stdio process never opens the store. Read tools for every user;
`approve` and `reject` only for an approver (or admin), and each asks the person to confirm
through MCP elicitation before it acts. None of these is among the tools of the agent's own LLM
(devops_agent/tools/langchain.py): a model never approves.
"""

# No `from __future__ import annotations`: the SDK reads the tools' annotations, which name
# resolvers local to build_mcp.

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import httpx
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from devops_agent.memory.users import Role, User
from devops_agent.redact import redact_data

DECISION_TOOLS = frozenset({"approve", "reject"})
READ_TOOLS = (
    "list_incidents",
    "get_run",
    "list_approvals",
    "get_approval_request",
    "get_audit_trail",
    "explain_run",
)
RunId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Comment = Annotated[str, Field(max_length=2000)]
RequestId = Annotated[
    str, Field(pattern=r"^[0-9a-f]{1,64}$", description="from get_approval_request")
]


class Desk:
    """The service's HTTP API as the tools use it (an httpx client with a token)."""

    def __init__(self, client: httpx.AsyncClient, authorization: str | None = None) -> None:
        self.client = client
        # /mcp: the caller's own Authorization, so the service decides as that user.
        self.headers = {"Authorization": authorization} if authorization else {}

    async def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        response = await self.client.get(path, params=query, headers=self.headers)
        if response.status_code == 404:
            raise ToolError(f"not found: {path}")
        if response.status_code >= 400:
            raise ToolError(f"the service answered {response.status_code}: {_detail(response)}")
        return response.json()

    async def decide(self, run_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        response = await self.client.post(f"/runs/{run_id}/resume", json=body, headers=self.headers)
        try:
            data = response.json()
        except ValueError:
            data = {"detail": response.text[:500]}
        return response.status_code, data


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:500]
    except (ValueError, AttributeError):
        return response.text[:200]


class Confirm(BaseModel):
    """What the person answers when asked to confirm a decision."""

    confirm: bool = Field(description="true to go ahead")


UserOf = Callable[[Context], Awaitable[User | None]]


def _text(data: Any) -> str:
    return json.dumps(redact_data(data), indent=1, sort_keys=True, default=str)


def explain(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The run's timeline as text: what it saw, what it thought, what it did, how it ended."""
    lines = [f"Run {run.get('run_id')} for {run.get('service')}: {run.get('status')}"]
    if run.get("outcome"):
        lines[0] += f", {run['outcome']}"
    for step in history:
        changed = ", ".join(step.get("changed") or step.get("keys") or [])
        lines.append(f"- {step.get('at') or step.get('time') or ''} {step.get('node')}: {changed}")
    diagnosis = run.get("diagnosis") or {}
    if diagnosis:
        lines.append(
            f"Diagnosis: {diagnosis.get('category')} ({diagnosis.get('confidence')}): "
            f"{diagnosis.get('root_cause')}"
        )
    plan = run.get("plan") or {}
    for step in plan.get("steps") or []:
        lines.append(f"Plan: {step.get('operation')} {step.get('target')} ({step.get('risk')})")
    if run.get("approval"):
        a = run["approval"]
        lines.append(
            f"Decision: {a.get('decision')} by {a.get('approver')} {a.get('comment') or ''}"
        )
    for action in run.get("actions") or []:
        lines.append(
            f"Action: {action.get('operation')} {action.get('target')}: {action.get('status')}"
        )
    if run.get("validation"):
        lines.append(f"Validation: healthy={run['validation'].get('healthy')}")
    if run.get("escalation"):
        lines.append(f"Escalation ({run.get('escalation_reason')}): {run['escalation']}")
    return "\n".join(str(redact_data(line)) for line in lines)


class HideDecisions:
    """MCP middleware: `tools/list` shows approve and reject only to an approver."""

    def __init__(self, identity_of: Callable[[Any], Awaitable[User | None]]) -> None:
        self.identity_of = identity_of

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method != "tools/list":
            return result
        who = await self.identity_of(ctx.request)
        if who is not None and who.may("approver"):
            return result
        if isinstance(result, dict):
            tools = [t for t in result.get("tools", []) if t.get("name") not in DECISION_TOOLS]
            return {**result, "tools": tools}
        tools = [t for t in result.tools if t.name not in DECISION_TOOLS]
        return result.model_copy(update={"tools": tools})


def build_mcp(
    desk_of: Callable[[Context], Desk],
    identity_of: UserOf,
    identity_of_request: Callable[[Any], Awaitable[User | None]],
) -> MCPServer:
    """The MCP server: the read tools for everyone, the decisions for approvers.
    `identity_of` finds the caller of a tool; `identity_of_request` the caller of a request
    (the transport's request object: a Starlette request over HTTP, None on stdio)."""
    server = MCPServer(
        "devops-agent",
        instructions="Incidents, runs and approval requests of the DevOps AI Agent. "
        "approve and reject need an approver and a confirmation.",
        middleware=[HideDecisions(identity_of_request)],
    )

    async def caller(ctx: Context, role: Role) -> User:
        who = await identity_of(ctx)
        if who is None or not who.may(role):
            raise ToolError(f"this needs the {role} role")
        return who

    @server.tool()
    async def list_incidents(
        ctx: Context, status: str | None = None, service: str | None = None, limit: int = 20
    ) -> str:
        """Runs of incidents, newest first (status: queued, running, awaiting_approval,
        completed, failed)."""
        await caller(ctx, "viewer")
        data = await desk_of(ctx).get("/runs", status=status, service=service, limit=limit)
        return _text(data)

    @server.tool()
    async def get_run(ctx: Context, run_id: RunId) -> str:
        """One run: alerts, diagnosis, plan, approval, actions, validation, outcome."""
        await caller(ctx, "viewer")
        return _text(await desk_of(ctx).get(f"/runs/{run_id}"))

    @server.tool()
    async def list_approvals(ctx: Context) -> str:
        """The runs waiting for a person's decision, with their approval requests."""
        await caller(ctx, "viewer")
        return _text(await desk_of(ctx).get("/approvals"))

    @server.tool()
    async def get_approval_request(ctx: Context, run_id: RunId) -> str:
        """What a waiting run asks: its request_id, reason, plan, alternatives, deadline."""
        await caller(ctx, "viewer")
        run = await desk_of(ctx).get(f"/runs/{run_id}")
        request = run.get("approval_request")
        if run.get("status") != "awaiting_approval" or not request:
            raise ToolError(f"run {run_id} is not waiting for approval ({run.get('status')})")
        return _text(request)

    @server.tool()
    async def get_audit_trail(ctx: Context, run_id: RunId) -> str:
        """The audit rows of a run, oldest first."""
        await caller(ctx, "viewer")
        return _text(await desk_of(ctx).get("/audit", run_id=run_id))

    @server.tool()
    async def explain_run(ctx: Context, run_id: RunId) -> str:
        """The run's timeline as text."""
        await caller(ctx, "viewer")
        desk = desk_of(ctx)
        run = await desk.get(f"/runs/{run_id}")
        history = await desk.get(f"/runs/{run_id}/history")
        steps = history.get("checkpoints") or history.get("history") or []
        return explain(run, steps if isinstance(steps, list) else [])

    # The role is checked before the person is asked, and again before acting.
    async def confirm_approve(run_id: str, ctx: Context) -> Elicit[Confirm]:
        await caller(ctx, "approver")
        return Elicit(f"Approve run {run_id}? The agent will carry out its plan.", Confirm)

    async def confirm_reject(run_id: str, ctx: Context) -> Elicit[Confirm]:
        await caller(ctx, "approver")
        return Elicit(f"Reject run {run_id}? It escalates to people.", Confirm)

    async def decide(
        ctx: Context,
        decision: str,
        run_id: str,
        request_id: str,
        comment: str,
        confirmed: ElicitationResult[Confirm],
    ) -> str:
        who = await caller(ctx, "approver")
        if not (isinstance(confirmed, AcceptedElicitation) and confirmed.data.confirm):
            return f"not confirmed: run {run_id} was left as it is"
        body = {
            "decision": decision,
            "approver": who.name,
            "comment": comment,
            "request_id": request_id,
        }
        status, data = await desk_of(ctx).decide(run_id, body)
        if status == 202:
            return f"{decision}d run {run_id} as {who.name}"
        raise ToolError(f"refused ({status}): {data.get('detail', '')}"[:600])

    @server.tool()
    async def approve(
        ctx: Context,
        run_id: RunId,
        request_id: RequestId,
        confirmed: Annotated[ElicitationResult[Confirm], Resolve(confirm_approve)],
        comment: Comment = "",
    ) -> str:
        """Approve a waiting run's current request (from get_approval_request), after the
        person confirms. Approvers only."""
        return await decide(ctx, "approve", run_id, request_id, comment, confirmed)

    @server.tool()
    async def reject(
        ctx: Context,
        run_id: RunId,
        request_id: RequestId,
        confirmed: Annotated[ElicitationResult[Confirm], Resolve(confirm_reject)],
        comment: Comment = "",
    ) -> str:
        """Reject a waiting run's current request, after the person confirms. Approvers only."""
        return await decide(ctx, "reject", run_id, request_id, comment, confirmed)

    return server
