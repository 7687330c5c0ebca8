"""The service's run tables: runs, the alerts that started or joined them, approval decisions.

Import this module before the schema is set up (the server's lifespan does) so that its tables
are part of `Base.metadata`. The queries on them are in memory/run_repo.py (runs, decisions,
deadlines, retention), memory/leases.py (who executes a run) and memory/intake.py (the webhook).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from devops_agent import sizes
from devops_agent.memory.db import Base
from devops_agent.state import Alert

QUEUED, RUNNING, AWAITING, COMPLETED, FAILED = (
    "queued",
    "running",
    "awaiting_approval",
    "completed",
    "failed",
)
OPEN_STATUSES = (QUEUED, RUNNING, AWAITING)
STATUSES = (QUEUED, RUNNING, AWAITING, COMPLETED, FAILED)
_OPEN_SQL = text("status IN ('queued', 'running', 'awaiting_approval')")


def db_now(postgres: bool) -> Any:
    """Now on the database's clock (PostgreSQL), so replicas' clocks never matter; on SQLite
    (one process) the local clock, as the naive UTC datetimes SQLite stores."""
    if postgres:
        return func.now()
    return datetime.now(UTC).replace(tzinfo=None)


class RunRecord(Base):
    """One run (a LangGraph thread) as the service tracks it."""

    __tablename__ = "runs"
    __table_args__ = (
        # At most one open run per service, even across replicas: intake joins it instead.
        Index(
            "uq_runs_open_service",
            "service",
            unique=True,
            sqlite_where=_OPEN_SQL,
            postgresql_where=_OPEN_SQL,
        ),
        Index("ix_runs_finished_unpruned", "status", "updated_at"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    incident_id: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(sizes.SERVICE), index=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[str] = mapped_column(String(40))
    awaiting_since: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # While waiting: until when (database time) a person may decide; later, it expires.
    decide_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # While waiting: what the run asks a person (the interrupt's value), for GET /approvals.
    approval_request: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # A decision claimed by the conditional UPDATE but not yet handed to the graph: survives a
    # crash between the 202 and the resume, so the decision is not lost.
    pending_decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The replica executing the run, and until when (database time) it holds it.
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A run parked in its settle window: nobody holds it, and it is claimable from this time on.
    wake_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The fencing token: raised each time the run passes to another holder. The ledger's begin
    # checks it, so a replica that lost the run cannot record a step of it.
    lease_generation: Mapped[int] = mapped_column(Integer, default=0)
    # What a finished run's views show (devops_agent.server.views.summary_of), kept when
    # retention deletes its checkpoints.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # When retention deleted the run's checkpoints (the run and its incident record stay).
    pruned_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The most alerts Alertmanager left out of one notification of the run (truncatedAlerts).
    truncated_alerts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AlertRecord(Base):
    """One alert event. A firing alert and its resolution are two events of one fingerprint."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("fingerprint", "starts_at", "status", name="uq_alert_event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    service: Mapped[str] = mapped_column(String(sizes.SERVICE))
    fingerprint: Mapped[str] = mapped_column(String(sizes.FINGERPRINT))
    starts_at: Mapped[str] = mapped_column(String(sizes.STARTS_AT))
    status: Mapped[str] = mapped_column(String(16))
    alertname: Mapped[str] = mapped_column(String(sizes.ALERTNAME), default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    received_at: Mapped[str] = mapped_column(String(40))

    def to_alert(self) -> Alert:
        return Alert(
            alertname=self.alertname,
            fingerprint=self.fingerprint,
            status="resolved" if self.status == "resolved" else "firing",
            labels=dict(self.labels or {}),
            annotations=dict(self.annotations or {}),
            startsAt=self.starts_at,
        )


class ApprovalRecord(Base):
    """A decision on a waiting run: who, what, when (including `expired` and `superseded`)."""

    __tablename__ = "approval_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    approver: Mapped[str] = mapped_column(String(200), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[str] = mapped_column(String(40))


def current(rows: Iterable[AlertRecord]) -> list[AlertRecord]:
    """One alert per (fingerprint, startsAt), resolved when a resolution of it came."""
    latest: dict[tuple[str, str], AlertRecord] = {}
    for row in rows:
        key = (row.fingerprint, row.starts_at)
        if key not in latest or row.status == "resolved":
            latest[key] = row
    return list(latest.values())


def all_resolved(rows: Iterable[AlertRecord]) -> bool:
    """Whether there are alerts and every one of them was resolved."""
    found = current(rows)
    return bool(found) and all(row.status == "resolved" for row in found)


FINISHED = (COMPLETED, FAILED)


EXPIRED = {
    "decision": "expired",
    "approver": "timeout",
    "comment": "no decision within APPROVAL_TIMEOUT",
}


@dataclass
class Claimed:
    """The outcome of a decision's claim: won (with the new lease generation), or not; `stale`
    when the decision named a request the run no longer waits on."""

    won: bool
    stale: bool = False
    late: bool = False  # the decision came after the deadline: the run was expired instead
    current_request: str = ""
    generation: int = 0

    def __bool__(self) -> bool:
        return self.won


@dataclass
class RunPage:
    runs: list[RunRecord]
    next_cursor: str | None
