"""The service's run records: runs, the alerts that started or joined them, and approval decisions.

Import this module before `create_schema` runs (the server's lifespan does) so that its tables
are part of `Base.metadata`. Every state change that two actors may race on (two approvers, an
approver and the timeout sweeper, an approver and a resolved alert) is one conditional UPDATE,
so exactly one of them wins, in one process or several.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CursorResult,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from devops_agent.memory.db import Base, LedgerEntry
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


def now_iso() -> str:
    """Now in UTC, always with microseconds so that the strings sort as times."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


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
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    incident_id: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[str] = mapped_column(String(40))
    awaiting_since: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # A decision claimed by the conditional UPDATE but not yet handed to the graph: survives a
    # crash between the 202 and the resume, so the decision is not lost.
    pending_decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AlertRecord(Base):
    """One alert event. A firing alert and its resolution are two events of one fingerprint."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("fingerprint", "starts_at", "status", name="uq_alert_event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    service: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    alertname: Mapped[str] = mapped_column(String(255), default="")
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


def fingerprint_of(alert: Alert) -> str:
    """Alertmanager's fingerprint, or a stable hash of the labels when a sender left it out."""
    if alert.fingerprint:
        return alert.fingerprint
    canonical = json.dumps(sorted(alert.labels.items()), separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass
class GroupOutcome:
    """What intake did with the alerts of one service."""

    service: str
    run_id: str | None
    deduplicated: bool
    created: bool = False  # a new run was queued: start it
    joined_resolved: bool = False  # a resolved alert joined an open run: maybe supersede it
    ignored: int = 0


@dataclass
class RunPage:
    runs: list[RunRecord]
    next_cursor: str | None


@dataclass
class Ingested:
    groups: list[GroupOutcome] = field(default_factory=list)

    @property
    def ignored(self) -> int:
        return sum(g.ignored for g in self.groups)


class RunRepo:
    """Queries on the run tables, on the same engine as the rest of the service's records."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        # Serialises intake in this process: the unique constraints guard across processes.
        self._intake_lock = asyncio.Lock()

    # -- intake -----------------------------------------------------------------------------

    async def ingest(self, groups: Sequence[tuple[str, list[Alert]]]) -> Ingested:
        """Store every alert (deduplicated) and attach it to its service's open run, or a new one.

        One transaction for the whole payload: when this returns, the alerts are durable.
        """
        result = Ingested()
        async with self._intake_lock, self.sessions() as session, session.begin():
            for service, alerts in groups:
                result.groups.append(await self._ingest_group(session, service, alerts))
        return result

    async def _ingest_group(
        self, session: AsyncSession, service: str, alerts: list[Alert]
    ) -> GroupOutcome:
        fresh: list[Alert] = []
        seen_runs: list[str | None] = []
        for alert in alerts:
            key = (fingerprint_of(alert), alert.startsAt, alert.status)
            if key in {(fingerprint_of(a), a.startsAt, a.status) for a in fresh}:
                continue  # the same alert twice in one payload
            earlier = (
                await session.execute(
                    select(AlertRecord.run_id).where(
                        AlertRecord.fingerprint == key[0],
                        AlertRecord.starts_at == key[1],
                        AlertRecord.status == key[2],
                    )
                )
            ).first()
            if earlier is None:
                fresh.append(alert)
            else:
                seen_runs.append(earlier[0])
        if not fresh:
            run_id = next((r for r in seen_runs if r), None)
            return GroupOutcome(service, run_id, True, ignored=0 if run_id else len(alerts))
        run = await self._open_run(session, service)
        created = False
        if run is None and any(a.status == "firing" for a in fresh):
            run = self._new_run(service)
            session.add(run)
            created = True
        run_id = run.run_id if run is not None else None
        stamp = now_iso()
        for alert in fresh:
            session.add(
                AlertRecord(
                    run_id=run_id,
                    service=service,
                    fingerprint=fingerprint_of(alert),
                    starts_at=alert.startsAt,
                    status=alert.status,
                    alertname=alert.alertname,
                    labels=alert.labels,
                    annotations=alert.annotations,
                    received_at=stamp,
                )
            )
        if run is None:
            return GroupOutcome(service, None, False, ignored=len(fresh))
        joined_resolved = not created and any(a.status == "resolved" for a in fresh)
        if not created:
            run.updated_at = stamp
        return GroupOutcome(service, run_id, False, created, joined_resolved)

    @staticmethod
    async def _open_run(session: AsyncSession, service: str) -> RunRecord | None:
        query = select(RunRecord).where(
            RunRecord.service == service, RunRecord.status.in_(OPEN_STATUSES)
        )
        return (await session.execute(query)).scalars().first()

    @staticmethod
    def _new_run(service: str) -> RunRecord:
        stamp = now_iso()
        return RunRecord(
            run_id=str(uuid.uuid4()),
            incident_id=f"inc-{uuid.uuid4().hex[:16]}",
            service=service,
            status=QUEUED,
            created_at=stamp,
            updated_at=stamp,
        )

    # -- reading ----------------------------------------------------------------------------

    async def get(self, run_id: str) -> RunRecord | None:
        async with self.sessions() as session:
            query = select(RunRecord).where(RunRecord.run_id == run_id)
            return (await session.execute(query)).scalars().first()

    async def page(
        self,
        *,
        status: str | None = None,
        service: str | None = None,
        limit: int = 50,
        cursor: int | None = None,
    ) -> RunPage:
        """Newest first; `cursor` is the `seq` below which the next page starts."""
        query = select(RunRecord).order_by(RunRecord.seq.desc()).limit(limit + 1)
        if status:
            query = query.where(RunRecord.status == status)
        if service:
            query = query.where(RunRecord.service == service)
        if cursor is not None:
            query = query.where(RunRecord.seq < cursor)
        async with self.sessions() as session:
            rows = list((await session.execute(query)).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return RunPage(rows, str(rows[-1].seq) if more and rows else None)

    async def with_status(self, *statuses: str) -> list[RunRecord]:
        async with self.sessions() as session:
            query = select(RunRecord).where(RunRecord.status.in_(statuses)).order_by(RunRecord.seq)
            return list((await session.execute(query)).scalars())

    async def alerts_of(self, run_ids: Iterable[str]) -> dict[str, list[AlertRecord]]:
        ids = list(run_ids)
        found: dict[str, list[AlertRecord]] = {r: [] for r in ids}
        if not ids:
            return found
        async with self.sessions() as session:
            query = select(AlertRecord).where(AlertRecord.run_id.in_(ids)).order_by(AlertRecord.id)
            for row in (await session.execute(query)).scalars():
                found[str(row.run_id)].append(row)
        return found

    async def current_alerts(self, run_id: str) -> list[Alert]:
        """The run's alerts, one per (fingerprint, startsAt), resolved when a resolution came."""
        latest: dict[tuple[str, str], AlertRecord] = {}
        for row in (await self.alerts_of([run_id]))[run_id]:
            key = (row.fingerprint, row.starts_at)
            if key not in latest or row.status == "resolved":
                latest[key] = row
        return [row.to_alert() for row in latest.values()]

    async def all_resolved(self, run_id: str) -> bool:
        """Whether every firing alert of the run has been resolved since."""
        current = await self.current_alerts(run_id)
        return bool(current) and all(a.status == "resolved" for a in current)

    async def decisions(self, run_id: str) -> list[ApprovalRecord]:
        async with self.sessions() as session:
            query = (
                select(ApprovalRecord)
                .where(ApprovalRecord.run_id == run_id)
                .order_by(ApprovalRecord.id)
            )
            return list((await session.execute(query)).scalars())

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            query = select(RunRecord.status, func.count()).group_by(RunRecord.status)
            rows = (await session.execute(query)).all()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({str(s): int(n) for s, n in rows})
        return counts

    async def count_alerts(self) -> int:
        async with self.sessions() as session:
            return int((await session.execute(select(func.count(AlertRecord.id)))).scalar_one())

    async def recent_actions(self, limit: int = 50) -> list[LedgerEntry]:
        async with self.sessions() as session:
            query = select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(limit)
            return list((await session.execute(query)).scalars())

    async def ping(self) -> None:
        async with self.sessions() as session:
            await session.execute(select(1))

    # -- state changes ----------------------------------------------------------------------

    async def mark(
        self,
        run_id: str,
        status: str,
        *,
        only_from: Sequence[str] | None = None,
        outcome: str | None = None,
        error: str | None = None,
        awaiting_since: str | None = None,
        clear_decision: bool = False,
    ) -> bool:
        """Set a run's status (only from `only_from` when given); whether a row changed."""
        values: dict[str, Any] = {
            "status": status,
            "updated_at": now_iso(),
            "outcome": outcome,
            "error": error,
            "awaiting_since": awaiting_since,
        }
        if clear_decision:
            values["pending_decision"] = None
        query = update(RunRecord).where(RunRecord.run_id == run_id).values(**values)
        if only_from is not None:
            query = query.where(RunRecord.status.in_(only_from))
        async with self.sessions() as session, session.begin():
            result = await session.execute(query)
        return _rowcount(result) == 1

    async def claim_decision(self, run_id: str, decision: dict[str, Any]) -> bool:
        """Move a waiting run to running with `decision`, atomically: exactly one caller wins.

        The winner's decision is recorded in the same transaction.
        """
        stamp = now_iso()
        query = (
            update(RunRecord)
            .where(RunRecord.run_id == run_id, RunRecord.status == AWAITING)
            .values(
                status=RUNNING, updated_at=stamp, awaiting_since=None, pending_decision=decision
            )
        )
        async with self.sessions() as session, session.begin():
            if _rowcount(await session.execute(query)) != 1:
                return False
            session.add(
                ApprovalRecord(
                    run_id=run_id,
                    decision=str(decision.get("decision", "")),
                    approver=str(decision.get("approver") or "")[:200],
                    comment=str(decision.get("comment") or "")[:2000],
                    at=stamp,
                )
            )
        return True


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0
