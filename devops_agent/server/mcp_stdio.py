"""`devops-agent mcp`: the MCP server over stdio for IDE assistants (issue 16.2). It talks to
the running service at DEVOPS_AGENT_URL as DEVOPS_AGENT_TOKEN's user, over the HTTP API, and
never opens the store: the service's roles and rules apply as they do to /mcp."""

from __future__ import annotations

import sys

import httpx

from devops_agent.memory.users import User, role_of
from devops_agent.server.mcp_tools import Desk, build_mcp

DEFAULT_URL = "http://127.0.0.1:8001"


async def serve_stdio(url: str, token: str) -> int:
    """Serve MCP on stdin/stdout until the client closes; 2 when the service refuses."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        try:
            answer = await client.get("/whoami")
        except httpx.HTTPError as exc:
            print(f"error: cannot reach {url}: {type(exc).__name__}", file=sys.stderr)
            return 2
        if answer.status_code != 200:
            print(f"error: {url}/whoami answered {answer.status_code}", file=sys.stderr)
            return 2
        data = answer.json()
        who = User(str(data["name"]), role_of(str(data["role"])), "token")
        desk = Desk(client)

        async def identity(_: object) -> User:
            return who

        server = build_mcp(lambda _ctx: desk, identity, identity)
        await server.run_stdio_async()
    return 0
