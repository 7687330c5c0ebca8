"""Authentication and roles as ASGI middleware, so every route (docs included) is covered.

A request is from a user (memory/users.py): AGENT_API_TOKEN is the user `admin`, each user's own
token is theirs, the console's session cookie is the user who logged in (on /ui only), and with
TRUSTED_PROXY_AUTH an authenticating proxy's `X-Forwarded-User`/`X-Forwarded-Email` name the
user, from TRUSTED_PROXIES only (unknown there: a viewer). Roles: GETs need a viewer, deciding
an approval an approver, `/control/*`, `/monitoring/cycle`, `/audit/verify` and anything else
that changes something an admin. WEBHOOK_TOKEN (when set) guards the webhook. Only the Authorization header counts; query strings are ignored. Comparison is
constant-time, and a failure says nothing about why.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from devops_agent.config import Settings
from devops_agent.memory.users import ADMIN, Role, User, Users, is_reserved, token_hash
from devops_agent.server.sessions import Sessions, cookie_of

log = logging.getLogger(__name__)

TOKEN_FILE = "api-token"  # noqa: S105 (a file name, not a secret)
# /slack/interactions is authenticated by Slack's request signature (server/slack.py).
OPEN_PATHS = frozenset({"/health", "/slack/interactions"})
WEBHOOK_PATH = "/webhook/alerts"
_UNAUTHORIZED = json.dumps({"detail": "unauthorized"}).encode()
ADMIN_PREFIXES = ("/control/", "/users")
ADMIN_PATHS = frozenset({"/monitoring/cycle", "/audit/verify"})
RESUME = re.compile(r"^/runs/[^/]+/resume$")
USER_SCOPE = "devops_agent.user"
SESSION_SCOPE = "devops_agent.session"


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


def required_role(method: str, path: str) -> Role | None:
    """The least role a request needs (None: the console's routes check for themselves)."""
    if path == "/ui" or path.startswith("/ui/"):
        return None
    if path.startswith(ADMIN_PREFIXES) or path in ADMIN_PATHS:
        return "admin"
    if method in ("GET", "HEAD", "OPTIONS"):
        return "viewer"
    if RESUME.match(path):
        return "approver"
    return "admin"  # whatever else changes something


def _client_in(scope: Scope, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    client = scope.get("client")
    if not client or not networks:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    return any(address in net for net in networks)


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            text = value.decode("latin-1").strip()
            return text or None
    return None


class Authenticator:
    """Who a request comes from: the API token (the user `admin`), a user's token, a console
    session, or (TRUSTED_PROXY_AUTH) an authenticating proxy's headers."""

    def __init__(
        self, api_token: str, users: Users, sessions: Sessions, settings: Settings
    ) -> None:
        self.api_token = api_token.encode()
        self.api_hash = token_hash(api_token)
        self.users = users
        self.sessions = sessions
        self.proxy = settings.trusted_proxy_auth
        self.networks = settings.proxy_networks

    async def by_token(self, token: str) -> User | None:
        if token_matches(token.encode(), self.api_token):
            return User(ADMIN, "admin", "api_token")
        return await self.users.by_token(token)

    async def by_slack_id(self, slack_id: str) -> User | None:
        """The user a Slack user id is mapped to (`users add NAME --slack-id U...`)."""
        return await self.users.by_slack_id(slack_id)

    async def by_hash(self, hashed: str) -> User | None:
        if hmac.compare_digest(hashed, self.api_hash):
            return User(ADMIN, "admin", "session")
        user = await self.users.by_hash(hashed)
        return User(user.name, user.role, "session") if user else None

    async def identify(self, scope: Scope) -> User | None:
        given = bearer(scope)
        if given is not None:
            return await self.by_token(given.decode("latin-1"))
        if self.proxy and _client_in(scope, self.networks):
            name = _header(scope, b"x-forwarded-user") or _header(scope, b"x-forwarded-email")
            if name and len(name) <= 100 and not is_reserved(name) and name.isprintable():
                known = await self.users.by_name(name)
                return User(name, known.role if known else "viewer", "proxy")
        path = scope.get("path", "")
        if path == "/ui" or path.startswith("/ui/"):
            session = self.sessions.read(cookie_of(list(scope.get("headers", ()))))
            scope[SESSION_SCOPE] = session
            if session is not None and session.token_hash:
                return await self.by_hash(session.token_hash)
        return None


class AuthMiddleware:
    def __init__(
        self, app: ASGIApp, authenticator: Authenticator, webhook_token: str | None
    ) -> None:
        self.app = app
        self.auth = authenticator
        self.webhook_token = webhook_token.encode() if webhook_token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if path == WEBHOOK_PATH:
            if self.webhook_token is None or token_matches(bearer(scope), self.webhook_token):
                await self.app(scope, receive, send)
            else:
                await _refuse(send, 401, _UNAUTHORIZED)
            return
        user = await self.auth.identify(scope)
        scope[USER_SCOPE] = user
        needed = required_role(scope.get("method", "GET"), path)
        if needed is None:
            await self.app(scope, receive, send)
        elif user is None:
            await _refuse(send, 401, _UNAUTHORIZED)
        elif not user.may(needed):
            detail = f"forbidden: {path} needs the role {needed}; {user.name} is {user.role}"
            await _refuse(send, 403, json.dumps({"detail": detail}).encode())
        else:
            await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def user_of(scope: Scope) -> User | None:
    """The authenticated user of a request (set by AuthMiddleware)."""
    found = scope.get(USER_SCOPE)
    return found if isinstance(found, User) else None
