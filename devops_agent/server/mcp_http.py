"""`/mcp` on the service (issue 16.2): the MCP server over streamable HTTP, behind the users'
bearer tokens (devops_agent/identity.py), its tools reading and deciding through the service's
own HTTP API in process, as AGENT_API_TOKEN, with the caller's name as the approver."""

from __future__ import annotations

import json
from typing import Any

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from devops_agent.identity import Directory, Identity
from devops_agent.server.auth import bearer
from devops_agent.server.mcp_tools import Desk, build_mcp

MCP_PATH = "/mcp"
IDENTITY = "devops_agent.identity"  # where the caller is kept in the ASGI scope
_UNAUTHORIZED = json.dumps({"detail": "unauthorized"}).encode()


def _identity_of_request(request: Any) -> Identity | None:
    scope = getattr(request, "scope", None) or {}
    found = scope.get(IDENTITY)
    return found if isinstance(found, Identity) else None


async def identity_of_request(request: Any) -> Identity | None:
    return _identity_of_request(request)


async def identity_of(ctx: Context) -> Identity | None:
    return _identity_of_request(ctx.request_context.request)


class McpEndpoint:
    """The service's MCP server and the ASGI handler of /mcp."""

    def __init__(self, app: ASGIApp, api_token: str, directory: Directory) -> None:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://devops-agent.internal",
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=30,
        )
        self.desk = Desk(client)
        self.directory = directory
        self.server: MCPServer = build_mcp(lambda _ctx: self.desk, identity_of, identity_of_request)
        # Every request carries a bearer token, which a DNS-rebinding page cannot add, so the
        # Host check (meant for unauthenticated local servers) would only refuse proxies.
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.handler = StreamableHTTPASGIApp(self.server.session_manager)

    def run(self) -> Any:
        """The session manager's task group; runs for the service's lifetime."""
        return self.server.session_manager.run()


class McpMiddleware:
    """Sends /mcp to the MCP server after authenticating the caller; the rest goes on."""

    def __init__(self, app: ASGIApp, endpoint: McpEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != MCP_PATH and not path.startswith(MCP_PATH + "/"):
            await self.app(scope, receive, send)
            return
        token = bearer(scope)
        who = await self.endpoint.directory.user_for_token(token.decode()) if token else None
        if who is None:
            await _refuse(send)
            return
        await self.endpoint.handler({**scope, IDENTITY: who}, receive, send)


async def _refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b"Bearer"),
                (b"content-length", str(len(_UNAUTHORIZED)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAUTHORIZED})
