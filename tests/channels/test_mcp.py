"""The MCP server (issue 16.2), driven with the `mcp` SDK's own client over both transports:
`/mcp` on a real `devops-agent serve` (streamable HTTP, bearer tokens and roles) and
`devops-agent mcp` (stdio), which reaches the same service over HTTP and never opens a store.
A decision asks for a confirmation through elicitation before it acts."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.server.conftest import SETTINGS_PREFIXES, Server, alert_payload
from tests.support.containers import Lab, container_state, wait_for

pytestmark = pytest.mark.docker
READ = {
    "list_incidents",
    "get_run",
    "list_approvals",
    "get_approval_request",
    "get_audit_trail",
    "explain_run",
}


class Answers:
    """An elicitation callback that answers from a list and keeps what it was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params.message)
        action = self.answers.pop(0)
        if action == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action=action)  # type: ignore[arg-type]


def http_client(srv: Server, token: str, answers: Answers | None = None) -> Client:
    transport = streamable_http_client(
        f"{srv.url}/mcp",
        http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}),
    )
    return Client(transport, elicitation_callback=answers)


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def tool_names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


async def test_mcp_over_http_with_roles_and_a_confirmed_approval(
    make_server: Callable[..., Server], lab: Lab, docker_client: Any
) -> None:
    srv = make_server()
    viewer_token = srv.add_user("vic", "viewer")  # the tokens `users add` printed
    approver_token = srv.add_user("ana", "approver")
    app = lab.crashed()
    run_id = srv.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    srv.wait_status(run_id, "awaiting_approval")

    for token in (None, "wrong-" + secrets.token_hex(4)):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        refused = httpx.post(f"{srv.url}/mcp", json={}, headers=headers, trust_env=False)
        assert refused.status_code == 401

    async with http_client(srv, viewer_token) as viewer:
        assert await tool_names(viewer) == READ  # no approve, no reject
        listed = text(await viewer.call_tool("list_approvals", {}))
        assert run_id in listed
        assert app.name in text(await viewer.call_tool("list_incidents", {"limit": 5}))
        request = text(await viewer.call_tool("get_approval_request", {"run_id": run_id}))
        assert "request_id" in request
        story = text(await viewer.call_tool("explain_run", {"run_id": run_id}))
        assert "Diagnosis: crash" in story and "restart_service" in story
        refused_call = await viewer.call_tool("approve", {"run_id": run_id, "request_id": "abc"})
        assert refused_call.is_error and "approver" in text(refused_call)
        bad = await viewer.call_tool("get_run", {"run_id": "../../etc"})
        assert bad.is_error
    assert srv.run(run_id)["status"] == "awaiting_approval"

    pending = srv.get("/approvals").json()["approvals"][0]
    answers = Answers("decline", "accept", "accept")
    async with http_client(srv, approver_token, answers) as approver:
        assert await tool_names(approver) == READ | {"approve", "reject"}
        args = {"run_id": run_id, "request_id": pending["request_id"], "comment": "go"}
        declined = await approver.call_tool("approve", args)
        assert "not confirmed" in text(declined)
        assert srv.run(run_id)["status"] == "awaiting_approval"  # nothing happened
        stale = await approver.call_tool("approve", {**args, "request_id": "0123abcd" * 2})
        assert stale.is_error and "refused (409)" in text(stale), text(stale)
        assert srv.run(run_id)["status"] == "awaiting_approval"
        done = await approver.call_tool("approve", args)
        assert not done.is_error, text(done)
    assert len(answers.asked) == 3 and all(run_id in q for q in answers.asked)
    run = srv.wait_status(run_id, "completed")
    assert run["outcome"] == "resolved", run
    assert run["approval"]["approver"] == "ana" and run["approval"]["decision"] == "approve"
    assert container_state(docker_client, app.name)["Status"] == "running"
    audit = srv.get("/audit", params={"run_id": run_id}).json()
    assert "ana" in str(audit)


async def test_mcp_over_stdio_talks_to_the_service_and_never_opens_a_store(
    make_server: Callable[..., Server], lab: Lab, tmp_path: Path
) -> None:
    srv = make_server()
    app = lab.crashed()
    run_id = srv.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    srv.wait_status(run_id, "awaiting_approval")
    workdir = tmp_path / "ide"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(SETTINGS_PREFIXES)}
    env.update(
        {
            "DEVOPS_AGENT_URL": srv.url,
            "DEVOPS_AGENT_TOKEN": srv.token,
            "DATA_DIR": str(workdir / "data"),
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "devops_agent", "mcp"], env=env, cwd=str(workdir)
    )
    answers = Answers("accept")
    async with Client(params, elicitation_callback=answers) as client:
        assert await tool_names(client) == READ | {"approve", "reject"}  # the admin token
        assert run_id in text(await client.call_tool("list_approvals", {}))
        assert app.name in text(await client.call_tool("get_run", {"run_id": run_id}))
        trail = text(await client.call_tool("get_audit_trail", {"run_id": run_id}))
        assert run_id in trail
        request_id = srv.get("/approvals").json()["approvals"][0]["request_id"]
        args = {"run_id": run_id, "request_id": request_id, "comment": "not now"}
        rejected = await client.call_tool("reject", args)
        assert not rejected.is_error, text(rejected)
    run = srv.wait_status(run_id, "completed")
    assert run["outcome"] == "rejected" and run["approval"]["approver"] == "admin"
    wait_for(lambda: answers.asked != [], timeout=5)
    assert not (workdir / "data").exists()  # no store, no token file, nothing
    assert list(workdir.iterdir()) == []
