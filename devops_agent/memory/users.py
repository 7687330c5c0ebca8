"""People: named users with a role and a token of their own (only its hash is stored).

Roles, each including the one before: `viewer` reads everything, `approver` also decides
approvals, `admin` also flips the kill switch, runs `/control/*` and `/monitoring/cycle`, and
verifies the audit trail over HTTP. AGENT_API_TOKEN is the token of the user `admin`, who is not
in the table. A Slack user maps to a user through `slack_id`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from devops_agent.memory.db import Base, Database, make_engine
from devops_agent.state import utcnow

Role = Literal["viewer", "approver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "approver", "admin")
ADMIN = "admin"  # the user of AGENT_API_TOKEN
# Names the agent records its own decisions under, and the built-in admin: never a person's.
RESERVED_NAMES = frozenset({"policy", "system", "alertmanager", "studio", "timeout", "agent"})
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")


class UserError(ValueError):
    """A user that cannot be added or removed; the message is one line for the operator."""


class UserRow(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    slack_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    created_at: Mapped[str] = mapped_column(String(40))


@dataclass(frozen=True)
class User:
    """Who a request comes from. `source`: token, api_token, session, proxy, cli, studio."""

    name: str
    role: Role
    source: str = "token"

    def may(self, role: Role) -> bool:
        """Whether this user has `role` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)


def role_of(text: str) -> Role:
    """`text` as a role, or UserError."""
    for role in ROLES:
        if text == role:
            return role
    raise UserError(f"role {text!r}: must be one of {', '.join(ROLES)}")


def token_hash(token: str) -> str:
    """SHA-256 of a token: tokens are 256 random bits, so no salt or stretching is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_reserved(name: str) -> bool:
    clean = name.strip().lower()
    return not clean or clean in RESERVED_NAMES or clean == ADMIN or ":" in clean


def check_name(name: str) -> str:
    if is_reserved(name):
        raise UserError(f"{name.strip()!r} is reserved for the agent's own records: pick another")
    if not NAME.match(name):
        raise UserError(f"{name!r} is not a user name: letters, digits and . _ @ + - (at most 100)")
    return name


class Users(Database):
    """The users table, on DATABASE_URL."""

    @classmethod
    def from_url(cls, database_url: str) -> Users:
        return cls(make_engine(database_url), name="users-db")

    async def add(self, name: str, role: str, slack_id: str | None = None) -> str:
        """Add a user; the new token (shown once: only its hash is kept)."""
        check_name(name)
        if role not in ROLES:
            raise UserError(f"role {role!r}: must be one of {', '.join(ROLES)}")
        if slack_id is not None and not SLACK_ID.match(slack_id):
            raise UserError(f"--slack-id {slack_id!r} is not a Slack user id (like U024BE7LH)")
        await self.setup()
        token = secrets.token_urlsafe(32)
        row = UserRow(
            name=name,
            role=role,
            token_hash=token_hash(token),
            slack_id=slack_id,
            created_at=utcnow(),
        )

        def insert() -> None:
            with self.sessions.begin() as session:
                session.add(row)

        try:
            await self.call(insert)
        except IntegrityError:
            raise UserError(f"a user {name!r} (or one with that Slack id) exists already") from None
        return token

    async def remove(self, name: str) -> bool:
        """Remove a user; whether there was one."""
        await self.setup()

        def drop() -> int:
            with self.sessions.begin() as session:
                result = session.execute(delete(UserRow).where(UserRow.name == name))
                return int(getattr(result, "rowcount", 0) or 0)

        return bool(await self.call(drop))

    async def all(self) -> list[UserRow]:
        await self.setup()
        return await self.scalars(select(UserRow).order_by(UserRow.name))

    async def by_token(self, token: str) -> User | None:
        """The user whose token this is, or None."""
        await self.setup()
        found = await self.scalars(select(UserRow).where(UserRow.token_hash == token_hash(token)))
        return User(found[0].name, found[0].role, "token") if found else None

    async def by_name(self, name: str) -> User | None:
        await self.setup()
        found = await self.scalars(select(UserRow).where(UserRow.name == name))
        return User(found[0].name, found[0].role, "token") if found else None

    async def by_slack_id(self, slack_id: str) -> User | None:
        """The user a Slack user id maps to (`users add --slack-id`), or None."""
        await self.setup()
        found = await self.scalars(select(UserRow).where(UserRow.slack_id == slack_id))
        return User(found[0].name, found[0].role, "slack") if found else None

    async def by_hash(self, hashed: str) -> User | None:
        """The user whose token has this hash (a console session keeps the hash), or None."""
        await self.setup()
        found = await self.scalars(select(UserRow).where(UserRow.token_hash == hashed))
        return User(found[0].name, found[0].role, "session") if found else None
