"""Ownership: which replica executes a run, until when (database time), under which fencing token.

Several replicas share one PostgreSQL: a run is executed by the replica whose `owner` it holds,
until `lease_until`. Claims are conditional UPDATEs (one run) or `SELECT ... FOR UPDATE SKIP
LOCKED` (a batch of claimable runs), so two replicas never hold the same run and never wait for
each other; the holder renews its leases while it works, and when it dies its runs become
claimable once the lease has run out. Each change of holder raises `lease_generation`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    case,
    func,
    or_,
    select,
    update,
)

from devops_agent.memory.db import Database
from devops_agent.memory.runs import QUEUED, RUNNING, RunRecord, db_now
from devops_agent.state import utcnow


class Leases(Database):
    """The lease queries of the runs table (RunRepo is one)."""

    def _update_one(self, query: Any) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount == 1

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
