"""Queries on the runs: reading, state changes, decisions, deadlines, retention.

Every state change that two actors may race on (two approvers, an approver and the timeout
sweeper, an approver and a resolved alert) is one conditional UPDATE, so exactly one of them
wins, in one process or several. The queries run in the worker thread of a `Database`
(devops_agent.memory.db): a transaction costs one hop off the event loop.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    func,
    insert,
    select,
    tuple_,
    update,
)

from devops_agent.memory import outbox
from devops_agent.memory.db import make_engine
from devops_agent.memory.leases import Leases
from devops_agent.memory.runs import (
    AWAITING,
    EXPIRED,
    FINISHED,
    QUEUED,
    RUNNING,
    STATUSES,
    AlertRecord,
    ApprovalRecord,
    Claimed,
    RunPage,
    RunRecord,
    all_resolved,
    current,
)
from devops_agent.state import Alert, utcnow


def _cursor(since: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{since}|{seq}".encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[str, int]:
    try:
        since, seq = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        return since, int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor of this list") from exc


class RunRepo(Leases):
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
        notice: tuple[str, dict[str, Any]] | None = None,
        clear_decision: bool = False,
        owner: str | None = None,
    ) -> bool:
        """Set a run's status (only from `only_from`, only while `owner` holds it, when given).

        A run that stops running (waiting, completed, failed) is released: no replica holds it.
        A waiting run may be decided for `decide_within` seconds, on the database's clock. A
        `notice` (kind, payload) goes into the outbox in the same transaction, when the change
        took place.
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
        if notice is None:
            return await self.call(self._update_one, query)

        def change_and_tell() -> bool:
            with self.engine.begin() as conn:
                if conn.execute(query).rowcount != 1:
                    return False
                outbox.enqueue(conn, run_id, notice[0], notice[1])
                return True

        return await self.call(change_and_tell)

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
