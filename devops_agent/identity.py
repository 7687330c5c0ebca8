"""Who a caller is: the seam between the channels of issue 16 (Slack, /mcp) and the users.

THE SEAM TO SWITCH AT MERGE. The users of issue 15 (a users table with roles viewer, approver,
admin, tokens and a nullable unique `slack_id`) are not on this branch yet. Until they are,
`SettingsDirectory` answers from what main has: AGENT_API_TOKEN is the user `admin` with the
role admin, SLACK_USERS (`U123=name:role,...`) names the Slack users and AGENT_TOKENS
(`name:role:sha256,...`) adds API users for /mcp (the HTTP API itself still takes only
AGENT_API_TOKEN). At merge, implement
`Directory` over the users table (token hash -> user, slack_id -> user) and return it from
`directory_for`; nothing else in Slack or MCP reads the settings for identities.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from devops_agent.config import ROLES, Settings, parse_agent_tokens, parse_slack_users

ADMIN_NAME = "admin"  # who AGENT_API_TOKEN is, until tokens belong to users


@dataclass(frozen=True)
class Identity:
    name: str
    role: str  # viewer | approver | admin

    def may(self, role: str) -> bool:
        """Whether this user has `role` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)


class Directory(Protocol):
    """Where Slack and MCP look people up."""

    async def user_for_token(self, token: str) -> Identity | None: ...

    async def user_for_slack_id(self, slack_id: str) -> Identity | None: ...


class SettingsDirectory:
    """The interim directory: AGENT_API_TOKEN (admin) and SLACK_USERS."""

    def __init__(self, settings: Settings, api_token: str) -> None:
        self.api_token = api_token.encode()
        self.slack = parse_slack_users(settings.slack_users)
        self.tokens = parse_agent_tokens(settings.agent_tokens)

    async def user_for_token(self, token: str) -> Identity | None:
        if not token:
            return None
        if hmac.compare_digest(token.encode(), self.api_token):
            return Identity(ADMIN_NAME, "admin")
        found = self.tokens.get(hashlib.sha256(token.encode()).hexdigest())
        return Identity(*found) if found else None

    async def user_for_slack_id(self, slack_id: str) -> Identity | None:
        found = self.slack.get(slack_id)
        return Identity(*found) if found else None


def directory_for(settings: Settings, api_token: str) -> Directory:
    """The directory the service uses (switch to the users table here at merge)."""
    return SettingsDirectory(settings, api_token)
