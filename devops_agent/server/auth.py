"""Bearer-token authentication as ASGI middleware, so every route (docs included) is covered.

AGENT_API_TOKEN guards everything but /health and the webhook; WEBHOOK_TOKEN (when set) guards
the webhook. Only the Authorization header counts; query strings are ignored. Comparison is
constant-time, and a failure says nothing about why.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from devops_agent.config import Settings

log = logging.getLogger(__name__)

TOKEN_FILE = "api-token"  # noqa: S105 (a file name, not a secret)
# /slack/interactions is authenticated by Slack's request signature (server/slack.py).
OPEN_PATHS = frozenset({"/health", "/slack/interactions"})
WEBHOOK_PATH = "/webhook/alerts"
_UNAUTHORIZED = json.dumps({"detail": "unauthorized"}).encode()


def load_api_token(settings: Settings) -> str:
    """AGENT_API_TOKEN, else the token in DATA_DIR/api-token, generated (mode 0600) when missing."""
    if settings.agent_api_token is not None and settings.agent_api_token.get_secret_value():
        return settings.agent_api_token.get_secret_value()
    path = Path(settings.data_dir) / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if not token:
            raise ValueError(f"{path} is empty: delete it to generate a new token") from None
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        log.info("API token read from %s (AGENT_API_TOKEN is unset)", path)
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    log.warning("AGENT_API_TOKEN is unset: generated an API token into %s (mode 0600)", path)
    return token


def bearer(scope: Scope) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
            return None
    return None


def token_matches(given: bytes | None, expected: bytes) -> bool:
    return given is not None and hmac.compare_digest(given, expected)


class AuthMiddleware:
    def __init__(self, app: ASGIApp, api_token: str, webhook_token: str | None) -> None:
        self.app = app
        self.api_token = api_token.encode()
        self.webhook_token = webhook_token.encode() if webhook_token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
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

    def _allowed(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        if path in OPEN_PATHS:
            return True
        if path == WEBHOOK_PATH:
            return self.webhook_token is None or token_matches(bearer(scope), self.webhook_token)
        return token_matches(bearer(scope), self.api_token)
