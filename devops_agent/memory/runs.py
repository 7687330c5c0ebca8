"""The service's run records: runs, the alerts that started or joined them, and approval decisions.

Import this module before the schema is set up (the server's lifespan does) so that its tables
are part of `Base.metadata`. Every state change that two actors may race on (two approvers, an
approver and the timeout sweeper, an approver and a resolved alert) is one conditional UPDATE,
so exactly one of them wins, in one process or several.

Several replicas share one PostgreSQL: a run is executed by the replica whose `owner` it holds,
until `lease_until` (database time). Claims are conditional UPDATEs (one run) or
`SELECT ... FOR UPDATE SKIP LOCKED` (a batch of claimable runs), so two replicas never hold the
same run and never wait for each other; the holder renews its leases while it works, and when it
dies its runs become claimable once the lease has run out.

The queries run in the worker thread of a `Database` (devops_agent.memory.db): the webhook's
transaction (a few statements) costs one hop off the event loop, which keeps intake fast while
graph runs share the loop.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from devops_agent import sizes
from devops_agent.memory.db import Base, Database, make_engine
from devops_agent.state import Alert, utcnow

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


def _cursor(since: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{since}|{seq}".encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[str, int]:
    try:
        since, seq = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        return since, int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor of this list") from exc


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


class RunRepo(Database):
    """Queries on the run tables, on the service's DATABASE_URL."""

    def __init__(self, engine: Engine):
        super().__init__(engine, name="runs-db")

    @classmethod
    def from_url(cls, database_url: str) -> RunRepo:
        return cls(make_engine(database_url))

    # -- reading ----------------------------------------------------------------------------

    async def get(self, run_id: str) -> RunRecord | None:
        return await self.call(self._get, run_id)

    def _get(self, run_id: str) -> RunRecord | None:
        with self.sessions() as session:
            query = select(RunRecord).where(RunRecord.run_id == run_id)
            return session.execute(query).scalars().first()

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
        rows = await self.scalars(query)
        more = len(rows) > limit
        rows = rows[:limit]
        return RunPage(rows, str(rows[-1].seq) if more and rows else None)

    async def waiting(self, limit: int = 100, cursor: str | None = None) -> RunPage:
        """Runs waiting for approval, longest waiting first. `cursor` (from the previous page's
        `next_cursor`) is opaque; a malformed one raises ValueError."""
        query = (
            select(RunRecord)
            .where(RunRecord.status == AWAITING)
            .order_by(RunRecord.awaiting_since, RunRecord.seq)
            .limit(limit + 1)
        )
        if cursor is not None:
            since, seq = _read_cursor(cursor)
            query = query.where(tuple_(RunRecord.awaiting_since, RunRecord.seq) > (since, seq))
        rows = await self.scalars(query)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more and rows else None
        return RunPage(rows, _cursor(last.awaiting_since or "", last.seq) if last else None)

    async def alerts_of(self, run_ids: Iterable[str]) -> dict[str, list[AlertRecord]]:
        ids = list(run_ids)
        found: dict[str, list[AlertRecord]] = {r: [] for r in ids}
        if not ids:
            return found
        query = select(AlertRecord).where(AlertRecord.run_id.in_(ids)).order_by(AlertRecord.id)
        for row in await self.scalars(query):
            found[str(row.run_id)].append(row)
        return found

    async def current_alerts(self, run_id: str) -> list[Alert]:
        """The run's alerts, one per (fingerprint, startsAt), resolved when a resolution came."""
        return [row.to_alert() for row in current((await self.alerts_of([run_id]))[run_id])]

    async def all_resolved(self, run_id: str) -> bool:
        """Whether every firing alert of the run has been resolved since."""
        return all_resolved((await self.alerts_of([run_id]))[run_id])

    async def counts(self) -> dict[str, int]:
        return await self.call(self._counts)

    def _counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            query = select(RunRecord.status, func.count()).group_by(RunRecord.status)
            rows = conn.execute(query).all()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({str(s): int(n) for s, n in rows})
        return counts

    async def ping(self) -> None:
        await self.call(self._scalar, select(1))

    def _scalar(self, query: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

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
        approval_request: dict[str, Any] | None = None,
        decide_within: float | None = None,
        summary: dict[str, Any] | None = None,
        clear_decision: bool = False,
        owner: str | None = None,
    ) -> bool:
        """Set a run's status (only from `only_from`, only while `owner` holds it, when given).

        A run that stops running (waiting, completed, failed) is released: no replica holds it.
        A waiting run may be decided for `decide_within` seconds, on the database's clock.
        """
        values: dict[str, Any] = {
            "status": status,
            "updated_at": utcnow(),
            "outcome": outcome,
            "error": error,
            "awaiting_since": awaiting_since,
            "approval_request": approval_request,
            "decide_by": self._lease_end(decide_within) if decide_within is not None else None,
        }
        if clear_decision:
            values["pending_decision"] = None
        if summary is not None:
            values["summary"] = summary
        if status not in (QUEUED, RUNNING):
            values.update(owner=None, lease_until=None)
        query = update(RunRecord).where(RunRecord.run_id == run_id).values(**values)
        if only_from is not None:
            query = query.where(RunRecord.status.in_(only_from))
        if owner is not None:
            query = query.where(RunRecord.owner == owner)
        return await self.call(self._update_one, query)

    def _update_one(self, query: Any) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount == 1

    async def claim_decision(
        self,
        run_id: str,
        decision: dict[str, Any],
        owner: str | None = None,
        lease: float = 30.0,
    ) -> Claimed:
        """Move a waiting run to running with `decision`, atomically: exactly one caller wins.

        The decision is bound to the request the run waits on: one that names another request
        (`request_id`) is stale and changes nothing; one that names none answers the current
        one and is stored with its id. The winner's decision is recorded in the same
        transaction, and the winner (`owner`) holds the run for `lease` seconds.
        """
        return await self.call(self._claim, run_id, decision, owner, lease)

    def _claim(
        self, run_id: str, decision: dict[str, Any], owner: str | None, lease: float
    ) -> Claimed:
        stamp = utcnow()
        with self.engine.begin() as conn:
            late_sql = RunRecord.decide_by <= self._db_now()
            query = select(
                RunRecord.status, RunRecord.approval_request, late_sql.label("late")
            ).where(RunRecord.run_id == run_id)
            row = conn.execute(query.with_for_update() if self.postgres else query).first()
            if row is None or row.status != AWAITING:
                return Claimed(False)
            current = str((row.approval_request or {}).get("request_id") or "")
            asked = str(decision.get("request_id") or "")
            if asked and current and asked != current:
                return Claimed(False, stale=True, current_request=current)
            late = bool(row.late) and decision.get("decision") in ("approve", "reject")
            if late:  # past the deadline: the run expires now, whoever asked
                decision = {**EXPIRED, "comment": f"{EXPIRED['comment']}; came late: {decision}"}
            decision = {**decision, "request_id": current or asked}
            claimed = conn.execute(
                update(RunRecord)
                .where(RunRecord.run_id == run_id, RunRecord.status == AWAITING)
                .values(
                    status=RUNNING,
                    updated_at=stamp,
                    awaiting_since=None,
                    approval_request=None,
                    decide_by=None,
                    pending_decision=decision,
                    owner=owner,
                    lease_until=self._lease_end(lease) if owner else None,
                    lease_generation=RunRecord.lease_generation + 1,
                )
                .returning(RunRecord.lease_generation)
            ).first()
            if claimed is None:
                return Claimed(False)
            conn.execute(
                insert(ApprovalRecord).values(
                    run_id=run_id,
                    decision=str(decision.get("decision", "")),
                    approver=str(decision.get("approver") or "")[:200],
                    comment=str(decision.get("comment") or "")[:2000],
                    at=stamp,
                )
            )
        return Claimed(True, late=late, generation=int(claimed[0]))

    # -- ownership: which replica executes a run ---------------------------------------------

    def _db_now(self) -> Any:
        return db_now(self.postgres)

    def _lease_end(self, seconds: float) -> Any:
        if self.postgres:
            return func.now() + timedelta(seconds=seconds)
        return datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=seconds)

    def _claimable(self) -> Any:
        """Open, not waiting for a person, not parked until later, and held by nobody (or by a
        replica whose lease ran out)."""
        return (
            RunRecord.status.in_((QUEUED, RUNNING)),
            or_(RunRecord.wake_at.is_(None), RunRecord.wake_at <= self._db_now()),
            or_(RunRecord.lease_until.is_(None), RunRecord.lease_until < self._db_now()),
        )

    async def claim(self, run_id: str, owner: str, lease: float) -> int | None:
        """Hold one run for `lease` seconds: its lease generation (the fencing token) when it is
        ours now (or was already), else None."""
        return await self.call(self._claim_one, run_id, owner, lease)

    def _generation_after(self, owner: str) -> Any:
        """The generation a claim leaves: the same for the holder renewing it, one more for a
        new holder."""
        return case(
            (RunRecord.owner == owner, RunRecord.lease_generation),
            else_=RunRecord.lease_generation + 1,
        )

    def _claim_one(self, run_id: str, owner: str, lease: float) -> int | None:
        status, due, free = self._claimable()
        query = (
            update(RunRecord)
            .where(RunRecord.run_id == run_id, status, due, or_(free, RunRecord.owner == owner))
            .values(
                owner=owner,
                lease_until=self._lease_end(lease),
                lease_generation=self._generation_after(owner),
                wake_at=None,
            )
            .returning(RunRecord.lease_generation)
        )
        with self.engine.begin() as conn:
            row = conn.execute(query).first()
        return int(row[0]) if row else None

    async def claim_batch(self, owner: str, lease: float, limit: int) -> list[str]:
        """Hold up to `limit` claimable runs: runs with a decision first, then taken-over runs,
        then queued ones. Rows another replica is claiming right now are skipped, not waited for.
        (The worker that drives each one claims it again, for its fencing token.)"""
        if limit <= 0:
            return []
        return await self.call(self._claim_batch, owner, lease, limit)

    def _claim_batch(self, owner: str, lease: float, limit: int) -> list[str]:
        first = case((RunRecord.status == RUNNING, 0), else_=1)
        query = (
            select(RunRecord.run_id)
            .where(*self._claimable())
            .order_by(first, RunRecord.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            ids = [str(r[0]) for r in conn.execute(query)]
            if ids:
                conn.execute(
                    update(RunRecord)
                    .where(RunRecord.run_id.in_(ids))
                    .values(
                        owner=owner,
                        lease_until=self._lease_end(lease),
                        lease_generation=self._generation_after(owner),
                        wake_at=None,
                    )
                )
        return ids

    async def park(self, run_id: str, owner: str, wake_at: datetime) -> bool:
        """Release a running run until `wake_at` (its settle window's next check); any replica
        claims it then."""
        wake = (
            wake_at.astimezone(UTC)
            if self.postgres
            else wake_at.astimezone(UTC).replace(tzinfo=None)
        )
        query = (
            update(RunRecord)
            .where(
                RunRecord.run_id == run_id, RunRecord.owner == owner, RunRecord.status == RUNNING
            )
            .values(owner=None, lease_until=None, wake_at=wake, updated_at=utcnow())
        )
        return await self.call(self._update_one, query)

    async def renew(self, owner: str, run_ids: Iterable[str], lease: float) -> set[str]:
        """Extend the leases `owner` still holds; the ids it still holds."""
        ids = list(run_ids)
        if not ids:
            return set()
        return await self.call(self._renew, owner, ids, lease)

    def _renew(self, owner: str, ids: list[str], lease: float) -> set[str]:
        query = (
            update(RunRecord)
            .where(RunRecord.owner == owner, RunRecord.run_id.in_(ids))
            .values(lease_until=self._lease_end(lease))
            .returning(RunRecord.run_id)
        )
        with self.engine.begin() as conn:
            return {str(r[0]) for r in conn.execute(query)}

    async def release(self, owner: str | None = None, run_ids: Iterable[str] | None = None) -> int:
        """Let other replicas take runs at once (on shutdown); `owner=None`: every run."""
        query = update(RunRecord).where(RunRecord.owner.is_not(None))
        if owner is not None:
            query = query.where(RunRecord.owner == owner)
        if run_ids is not None:
            query = query.where(RunRecord.run_id.in_(list(run_ids)))
        return await self.call(self._update_many, query.values(owner=None, lease_until=None))

    def _update_many(self, query: Any) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount)

    async def overdue(self, after: int = 0, limit: int = 500) -> list[tuple[str, int]]:
        """Runs past their deadline (database time), `limit` at a time in `seq` order after
        `after` (ids and seq only: thousands may wait)."""
        query = (
            select(RunRecord.run_id, RunRecord.seq)
            .where(
                RunRecord.status == AWAITING,
                RunRecord.decide_by <= self._db_now(),
                RunRecord.seq > after,
            )
            .order_by(RunRecord.seq)
            .limit(limit)
        )
        return await self.call(self._rows, query)

    async def backfill_deadlines(self, timeout: float) -> int:
        """Give runs that began waiting before deadlines were stored (migration 0005) the one
        their wait implies: `awaiting_since` + APPROVAL_TIMEOUT."""
        return await self.call(self._backfill_deadlines, timeout)

    def _backfill_deadlines(self, timeout: float) -> int:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(RunRecord.run_id, RunRecord.awaiting_since).where(
                    RunRecord.status == AWAITING, RunRecord.decide_by.is_(None)
                )
            ).all()
            for run_id, since in rows:
                start = datetime.fromisoformat(since) if since else datetime.now(UTC)
                deadline = (start + timedelta(seconds=timeout)).astimezone(UTC)
                if not self.postgres:
                    deadline = deadline.replace(tzinfo=None)
                conn.execute(
                    update(RunRecord).where(RunRecord.run_id == run_id).values(decide_by=deadline)
                )
        return len(rows)

    def _rows(self, query: Any) -> list[tuple[str, int]]:
        with self.engine.connect() as conn:
            return [(str(a), int(b)) for a, b in conn.execute(query)]

    # -- retention --------------------------------------------------------------------------

    async def prunable(self, finished_before: str, limit: int) -> list[str]:
        """Finished runs, last changed before `finished_before`, whose checkpoints remain."""
        query = (
            select(RunRecord.run_id)
            .where(
                RunRecord.status.in_(FINISHED),
                RunRecord.updated_at < finished_before,
                RunRecord.pruned_at.is_(None),
            )
            .order_by(RunRecord.seq)
            .limit(limit)
        )
        return [str(r) for r in await self.scalars(query)]

    async def mark_pruned(self, run_ids: Iterable[str]) -> int:
        query = (
            update(RunRecord)
            .where(RunRecord.run_id.in_(list(run_ids)), RunRecord.pruned_at.is_(None))
            .values(pruned_at=utcnow())
        )
        return await self.call(self._update_many, query)
