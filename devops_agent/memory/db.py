"""Engine and schema: one DATABASE_URL for every store.

The stores run their queries on a synchronous engine in worker threads of their own (`Database`):
a transaction of a few statements then costs one hop off the event loop, where an async driver
(aiosqlite) takes one per statement. A run makes about ten small transactions and an alert one,
so the hops were most of their cost (bench/graph_overhead.py, bench/webhook_load.py).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from sqlalchemy import (
    JSON,
    Boolean,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from devops_agent.dburl import DatabaseUrl

T = TypeVar("T")
PG_CONNECT_TIMEOUT = 5  # seconds
PG_OPTIONS = "-c statement_timeout=30000 -c lock_timeout=30000"  # milliseconds


class Base(DeclarativeBase):
    pass


class LedgerEntry(Base):
    """One step of execute, recorded before it runs and again after it ends."""

    __tablename__ = "action_ledger"
    __table_args__ = (
        UniqueConstraint("run_id", "attempt", "step", name="uq_ledger_step"),
        Index("ix_ledger_target_key", "target_key", "started_at"),
    )

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
    # The target's identity (limits and joins are keyed on it), what the step would change,
    # taken before it ran, and whether it was found done in reality after a crash.
    target_key: Mapped[str] = mapped_column(String(600), default="", index=False)
    snapshot: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    reconciled: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)  # of a refusal


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
    # The autonomy ladder: fixes a person approved that held, in a row; promoted, the operation
    # runs by itself for this pattern (AUTONOMY_LADDER). A failure, rollback or rejection resets.
    approved_held: Mapped[int] = mapped_column(Integer, default=0)
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


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


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL (readers never block the writer), a busy timeout, and synchronous=NORMAL: a commit
    survives a killed process; only a power loss may take the last ones."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(database_url: str) -> Engine:
    """A synchronous engine on DATABASE_URL; SQLite gets WAL and a busy timeout so the
    checkpointer can share the file."""
    url = DatabaseUrl(database_url).sqlalchemy
    if url == "sqlite://":
        return create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", sqlite_pragmas)
        return engine
    # Bounded waits: a connection that cannot be made in 5 s, or a statement that runs 30 s,
    # fails instead of hanging the caller (a lease renewal above all).
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT, "options": PG_OPTIONS},
    )


class Database:
    """A synchronous engine and the worker threads its queries run in: one on SQLite (one writer
    at a time anyway, so the store's own writes never wait on each other's locks), four on
    PostgreSQL. `close()` releases both; a later call opens them again (a context may serve
    several agents in turn). A call cancelled by its caller still finishes in its thread.
    """

    def __init__(self, engine: Engine, name: str = "db"):
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.postgres = engine.dialect.name == "postgresql"
        self._workers = 1 if engine.dialect.name == "sqlite" else 4
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._ready = False

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` in this database's worker thread."""
        if self._executor is None:  # first use, or first use after close()
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix=self._name)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def scalars(self, query: Any) -> list[Any]:
        """The objects (or single values) that a SELECT returns, in one session."""
        return await self.call(self._scalars, query)

    def _scalars(self, query: Any) -> list[Any]:
        with self.sessions() as session:
            return list(session.execute(query).scalars())

    async def setup(self) -> None:
        """Bring the schema to the latest migration, once per process (idempotent)."""
        if not self._ready:
            await self.call(create_schema, self.engine)
            self._ready = True

    async def close(self) -> None:
        """Release the threads and connections (a later call opens them again)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)
        self.engine.dispose()
        self._ready = False


def create_schema(engine: Engine) -> None:
    """Bring the schema to the latest migration (devops_agent.migrations; idempotent, and under
    an advisory lock on PostgreSQL). `memory://` has no history to keep: create_all."""
    from devops_agent.memory import outbox, runs, users  # noqa: F401 (their tables, in Base.metadata)

    database = engine.url.database
    if database in (None, "", ":memory:"):
        Base.metadata.create_all(engine)
        return
    if engine.dialect.name == "sqlite":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    from devops_agent.migrations import upgrade

    with engine.begin() as conn:
        upgrade(conn)


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is the database being unreachable, not a bug."""
    while exc is not None:
        if isinstance(exc, psycopg.OperationalError | OperationalError | InterfaceError):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False
