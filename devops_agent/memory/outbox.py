"""The outbox: notifications stored in the transaction of the state change they tell about.

An approval request is written with the UPDATE that makes the run wait, an escalation with the
one that completes it: a process that dies after the change still has the notice to send, and
one that dies before it has neither. A deliverer (server/outbox.py) sends what is due, at least
once, each notice under a stable `delivery_id` (a receiver can drop a repeat), one replica at a
time per notice (a lease on the row).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Integer,
    String,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from devops_agent.memory.db import Base, Database, make_engine
from devops_agent.memory.runs import db_now
from devops_agent.state import utcnow

MAX_BACKOFF = 300.0  # seconds between two tries of one notice, at most


class Notice(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[str] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def enqueue(conn: Connection, run_id: str, kind: str, payload: dict[str, Any]) -> str:
    """Add a notice inside the caller's transaction; its delivery id."""
    delivery_id = str(uuid.uuid4())
    conn.execute(
        insert(Notice).values(
            delivery_id=delivery_id,
            run_id=run_id,
            kind=kind,
            payload={**payload, "delivery_id": delivery_id},
            created_at=utcnow(),
            attempts=0,
        )
    )
    return delivery_id


def _later(postgres: bool, seconds: float) -> Any:
    if postgres:
        return func.now() + timedelta(seconds=seconds)
    return datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=seconds)


def claim_due(conn: Connection, owner: str, lease: float, limit: int) -> list[Notice]:
    """Hold up to `limit` notices that are due and held by nobody."""
    postgres = conn.dialect.name == "postgresql"
    now = db_now(postgres)
    query = (
        select(Notice)
        .where(
            Notice.delivered_at.is_(None),
            (Notice.next_at.is_(None)) | (Notice.next_at <= now),
            (Notice.lease_until.is_(None)) | (Notice.lease_until < now),
        )
        .order_by(Notice.id)
        .limit(limit)
    )
    rows = [
        Notice(**r._mapping)
        for r in conn.execute(query.with_for_update(skip_locked=True) if postgres else query)
    ]
    if rows:
        conn.execute(
            update(Notice)
            .where(Notice.id.in_([r.id for r in rows]))
            .values(owner=owner, lease_until=_later(postgres, lease))
        )
    return rows


def settle(
    conn: Connection, notice_id: int, owner: str, problem: str | None, attempts: int
) -> None:
    """Record a try: delivered, or due again after a backoff that doubles with each try."""
    postgres = conn.dialect.name == "postgresql"
    values: dict[str, Any] = {"owner": None, "lease_until": None, "attempts": attempts + 1}
    if problem is None:
        values["delivered_at"] = utcnow()
    else:
        values["last_error"] = problem[:500]
        values["next_at"] = _later(postgres, min(MAX_BACKOFF, 0.5 * 2**attempts))
    conn.execute(
        update(Notice).where(Notice.id == notice_id, Notice.owner == owner).values(**values)
    )


def backlog(conn: Connection) -> int:
    return int(
        conn.scalar(select(func.count()).select_from(Notice).where(Notice.delivered_at.is_(None)))
        or 0
    )


class Outbox(Database):
    """The outbox's queries, for a deliverer (and the CLI, which adds its run's notice)."""

    @classmethod
    def from_url(cls, database_url: str) -> Outbox:
        return cls(make_engine(database_url), name="outbox-db")

    async def add(self, run_id: str, kind: str, payload: dict[str, Any]) -> str:
        await self.setup()

        def add() -> str:
            with self.engine.begin() as conn:
                return enqueue(conn, run_id, kind, payload)

        return await self.call(add)

    async def due(self, owner: str, lease: float, limit: int = 20) -> list[Notice]:
        await self.setup()

        def claim() -> list[Notice]:
            with self.engine.begin() as conn:
                return claim_due(conn, owner, lease, limit)

        return await self.call(claim)

    async def tried(self, notice: Notice, owner: str, problem: str | None) -> None:
        def record() -> None:
            with self.engine.begin() as conn:
                settle(conn, notice.id, owner, problem, notice.attempts)

        await self.call(record)

    async def backlog(self) -> int:
        await self.setup()

        def count() -> int:
            with self.engine.connect() as conn:
                return backlog(conn)

        return await self.call(count)
