"""Engine and schema: one DATABASE_URL for every store."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool


class Base(DeclarativeBase):
    pass


class LedgerEntry(Base):
    """One step of execute, recorded before it runs and again after it ends."""

    __tablename__ = "action_ledger"
    __table_args__ = (UniqueConstraint("run_id", "attempt", "step", name="uq_ledger_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(
        String(16)
    )  # started | succeeded | failed | refused | dry_run
    output: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[str] = mapped_column(String(40))
    finished_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class Incident(Base):
    """What `learn` keeps of a finished run."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    service: Mapped[str] = mapped_column(String(255), index=True)
    category: Mapped[str] = mapped_column(String(32))
    root_cause: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    outcome: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[list] = mapped_column(JSON, default=list)
    actions: Mapped[list] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[str] = mapped_column(String(40))


class Pattern(Base):
    """How often an operation fixed a category of incident on a service."""

    __tablename__ = "patterns"
    __table_args__ = (UniqueConstraint("service", "category", "operation", name="uq_pattern"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(64))
    successes: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class Control(Base):
    """Switches that every replica must see, such as the kill switch (`actions_paused`)."""

    __tablename__ = "controls"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[str] = mapped_column(String(40))
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class AuditRow(Base):
    """One decision in the append-only audit trail, chained to the previous row by an HMAC."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def sqlalchemy_url(database_url: str) -> str:
    """The SQLAlchemy async URL for a DATABASE_URL (memory:// is a private in-memory SQLite)."""
    if database_url.startswith("memory://"):
        return "sqlite+aiosqlite://"
    if database_url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + database_url.removeprefix("sqlite:///")
    if database_url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return database_url


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL (readers never block the writer), a busy timeout, and synchronous=NORMAL: a commit
    survives a killed process; only a power loss may take the last ones."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(database_url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so the checkpointer can share the file."""
    url = sqlalchemy_url(database_url)
    if url == "sqlite+aiosqlite://":
        return create_async_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


async def create_schema(engine: AsyncEngine) -> None:
    """Bring the schema to the latest migration (devops_agent.migrations; idempotent, and under
    an advisory lock on PostgreSQL). `memory://` has no history to keep: create_all.

    Alembic reads its scripts from disk, so it runs in a worker thread on a synchronous engine
    of the same URL, never on the event loop.
    """
    if engine.url.database in (None, "", ":memory:"):
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        return
    from devops_agent.migrations import upgrade_url

    sync_url = engine.url.set(drivername=engine.url.drivername.replace("+aiosqlite", ""))
    await asyncio.to_thread(upgrade_url, sync_url.render_as_string(hide_password=False))
