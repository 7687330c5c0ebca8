"""`/mcp` on the service (issue 16.2): the MCP server over streamable HTTP, behind the users'
bearer tokens (the users' own, server/auth.py), its tools reading and deciding through the service's
own HTTP API in process, as AGENT_API_TOKEN, with the caller's name as the approver."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from devops_agent.memory.users import User
from devops_agent.server.auth import Authenticator, bearer

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

MCP_PATH = "/mcp"
IDENTITY = "devops_agent.identity"  # where the caller is kept in the ASGI scope
_UNAUTHORIZED = json.dumps({"detail": "unauthorized"}).encode()


def _identity_of_request(request: Any) -> User | None:
    scope = getattr(request, "scope", None) or {}
    found = scope.get(IDENTITY)
    return found if isinstance(found, User) else None


async def identity_of_request(request: Any) -> User | None:
    return _identity_of_request(request)


async def identity_of(ctx: Context) -> User | None:
    return _identity_of_request(ctx.request_context.request)


class McpEndpoint:
    """The service's MCP server and the ASGI handler of /mcp, built on the first request (the
    SDK is a large import that the service's start need not wait for); its session manager
    runs in a task of its own until `close()`."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator
        self._handler: ASGIApp | None = None
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def handler(self) -> ASGIApp:
        if self._handler is None:
            async with self._lock:
                if self._handler is None:
                    self._handler = await self._start()
        return self._handler

    async def _start(self) -> ASGIApp:
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
        from mcp.server.transport_security import TransportSecuritySettings

        from devops_agent.server.mcp_tools import Desk, build_mcp

        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://devops-agent.internal",
            timeout=30,
        )
        client = self._client

        def desk_of(ctx: Context) -> Desk:
            """The service's API as the caller of this tool call (their own token)."""
            request = ctx.request_context.request
            headers = getattr(request, "headers", None)
            return Desk(client, headers.get("authorization") if headers is not None else None)

        server = build_mcp(desk_of, identity_of, identity_of_request)
        # Every request carries a bearer token, which a DNS-rebinding page cannot add, so the
        # Host check (meant for unauthenticated local servers) would only refuse proxies.
        server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        ready = asyncio.Event()

        async def hold() -> None:
            async with server.session_manager.run():
                ready.set()
                await self._stop.wait()

        self._task = asyncio.create_task(hold(), name="mcp-sessions")
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            waiting.cancel()
            await self._task  # raises what stopped it
        return StreamableHTTPASGIApp(server.session_manager)

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._client is not None:
            await self._client.aclose()


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
        who = await self.endpoint.authenticator.by_token(token.decode("latin-1")) if token else None
        if who is None:
            await _refuse(send)
            return
        handler = await self.endpoint.handler()
        await handler({**scope, IDENTITY: who}, receive, send)


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
