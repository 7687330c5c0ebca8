"""Queries over the service's tables: the action ledger, incidents and learned patterns.

Each public method is one transaction, run in the database's worker thread (`Database`); the
writes every run makes are SQLAlchemy Core statements.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from devops_agent.memory.db import (
    Control,
    Database,
    Incident,
    LedgerEntry,
    Pattern,
    make_engine,
)
from devops_agent.state import utcnow


class Store(Database):
    """One object for the agent's own records, on the same DATABASE_URL as the checkpoints."""

    @classmethod
    def from_url(cls, database_url: str) -> Store:
        return cls(make_engine(database_url), name="store-db")

    # -- the action ledger ------------------------------------------------------------------

    async def begin_step(
        self,
        run_id: str,
        attempt: int,
        step: int,
        operation: str,
        target: str,
        params: dict[str, Any],
    ) -> LedgerEntry | None:
        """Record a step as started. Returns the earlier entry when the step was already recorded,
        in which case the caller must not run it again."""
        await self.setup()

        def record() -> LedgerEntry | None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(LedgerEntry).values(
                            run_id=run_id,
                            attempt=attempt,
                            step=step,
                            operation=operation,
                            target=target,
                            params=params,
                            status="started",
                            output="",
                            started_at=utcnow(),
                        )
                    )
                return None
            except IntegrityError:
                return self._ledger_entry(run_id, attempt, step)

        return await self.call(record)

    async def finish_step(
        self, run_id: str, attempt: int, step: int, status: str, output: str
    ) -> None:
        await self.call(self._finish_step, run_id, attempt, step, status, output)

    def _finish_step(self, run_id: str, attempt: int, step: int, status: str, output: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(LedgerEntry)
                .where(
                    LedgerEntry.run_id == run_id,
                    LedgerEntry.attempt == attempt,
                    LedgerEntry.step == step,
                )
                .values(status=status, output=output, finished_at=utcnow())
            )

    def _ledger_entry(self, run_id: str, attempt: int, step: int) -> LedgerEntry | None:
        with self.sessions() as session:
            return session.execute(
                select(LedgerEntry).where(
                    LedgerEntry.run_id == run_id,
                    LedgerEntry.attempt == attempt,
                    LedgerEntry.step == step,
                )
            ).scalar_one_or_none()

    async def ledger(
        self, run_id: str | None = None, limit: int | None = None
    ) -> list[LedgerEntry]:
        """The ledger of one run in order, or (run_id None) the newest `limit` steps of all."""
        await self.setup()
        query = select(LedgerEntry)
        if run_id is not None:
            query = query.where(LedgerEntry.run_id == run_id).order_by(LedgerEntry.id)
        else:
            query = query.order_by(LedgerEntry.id.desc())
        return await self.scalars(query.limit(limit))

    # -- incidents and what was learned -----------------------------------------------------

    async def record_incident(
        self,
        *,
        run_id: str,
        service: str,
        category: str,
        root_cause: str,
        confidence: float,
        outcome: str,
        evidence: list[dict[str, Any]],
        actions: list[dict[str, Any]],
        attempts: int,
    ) -> None:
        """Store the finished incident and count how each operation did (idempotent per run)."""
        await self.setup()
        incident = {
            "run_id": run_id,
            "service": service,
            "category": category,
            "root_cause": root_cause,
            "confidence": confidence,
            "outcome": outcome,
            "evidence": evidence,
            "actions": actions,
            "attempts": attempts,
            "created_at": utcnow(),
        }
        await self.call(self._record_incident, incident)

    def _record_incident(self, incident: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            stored = conn.execute(
                self._insert(Incident)
                .values(**incident)
                .on_conflict_do_nothing(index_elements=["run_id"])
            )
            if stored.rowcount == 0:
                return  # learned already (learn ran again after a resume)
            fixed = int(incident["outcome"] == "resolved")
            succeeded = {
                a["operation"] for a in incident["actions"] if a.get("status") == "succeeded"
            }
            for operation in sorted(succeeded):
                conn.execute(
                    self._insert(Pattern)
                    .values(
                        service=incident["service"],
                        category=incident["category"],
                        operation=operation,
                        successes=fixed,
                        failures=1 - fixed,
                    )
                    .on_conflict_do_update(
                        index_elements=["service", "category", "operation"],
                        set_={
                            "successes": Pattern.successes + fixed,
                            "failures": Pattern.failures + 1 - fixed,
                        },
                    )
                )

    def _insert(self, model: type[Incident] | type[Pattern]) -> Any:
        """INSERT with ON CONFLICT, in this database's dialect."""
        return (postgresql if self.postgres else sqlite).insert(model)

    async def history(self, service: str) -> dict[tuple[str, str], tuple[int, int]]:
        """(category, operation) -> (successes, failures) on this service."""
        await self.setup()
        return await self.call(self._history, service)

    def _history(self, service: str) -> dict[tuple[str, str], tuple[int, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    Pattern.category, Pattern.operation, Pattern.successes, Pattern.failures
                ).where(Pattern.service == service)
            )
            return {(c, o): (ok, failed) for c, o, ok, failed in rows}

    async def incidents(self, service: str | None = None) -> list[Incident]:
        await self.setup()
        query = select(Incident).order_by(Incident.id)
        if service:
            query = query.where(Incident.service == service)
        return await self.scalars(query)

    # -- what the policy needs --------------------------------------------------------------

    async def policy_inputs(
        self,
        since: datetime,
        operations: set[str],
        services: list[str],
        failures: int,
        cooldown: int,
    ) -> tuple[bool, dict[str, int], int, dict[str, str]]:
        """Everything the policy reads, in one transaction: whether actions are paused (the kill
        switch), mutating actions since `since` on each of `services` and in all, and open
        breakers per service."""
        await self.setup()

        def read() -> tuple[bool, dict[str, int], int, dict[str, str]]:
            with self.engine.connect() as conn:
                paused = conn.scalar(select(Control.value).where(Control.name == "actions_paused"))
                counts, total = _actions_since(conn, since, operations, services)
                breakers = {}
                for service in dict.fromkeys(services):
                    why = _breaker(conn, service, failures, cooldown)
                    if why:
                        breakers[service] = why
            return paused == "true", counts, total, breakers

        return await self.call(read)

    async def control(self, name: str) -> Control | None:
        """A switch every replica sees (None when never set)."""
        await self.setup()
        return await self.call(self._control, name)

    def _control(self, name: str) -> Control | None:
        with self.sessions() as session:
            return session.get(Control, name)

    async def set_control(self, name: str, value: str, by: str = "") -> None:
        await self.setup()
        await self.call(self._set_control, name, value, by)

    def _set_control(self, name: str, value: str, by: str) -> None:
        with self.sessions() as session:
            row = session.get(Control, name)
            if row is None:
                session.add(Control(name=name, value=value, updated_at=utcnow(), updated_by=by))
            else:
                row.value, row.updated_at, row.updated_by = value, utcnow(), by
            session.commit()


def _actions_since(
    conn: Connection, since: datetime, operations: set[str], services: list[str]
) -> tuple[dict[str, int], int]:
    """Mutating actions (started, succeeded or failed) since `since`: per service, and in all.

    One aggregate row per target acted on in the window (a few: the hourly limits cap them)."""
    rows = conn.execute(
        select(LedgerEntry.target, func.count())
        .where(
            LedgerEntry.started_at >= since.isoformat(),
            LedgerEntry.status.in_(("started", "succeeded", "failed")),
            LedgerEntry.operation.in_(sorted(operations)),
        )
        .group_by(LedgerEntry.target)
    )
    per_target = {str(target): int(count) for target, count in rows}
    wanted = set(services)
    return {t: n for t, n in per_target.items() if t in wanted}, sum(per_target.values())


def _breaker(conn: Connection, service: str, failures: int, cooldown: int) -> str | None:
    """Why the circuit breaker is open for a service, or None.

    It opens after `failures` incidents in a row, within `cooldown` seconds, in which the agent
    acted and the service was still not healthy (outcome escalated after actions).
    """
    since = (datetime.now(UTC) - timedelta(seconds=cooldown)).isoformat()
    recent = conn.execute(
        select(Incident.outcome, Incident.actions, Incident.created_at)
        .where(Incident.service == service, Incident.created_at >= since)
        .order_by(Incident.id.desc())
        .limit(failures)
    ).all()
    failed = [
        row
        for row in recent
        if row.outcome == "escalated" and any(a.get("status") == "succeeded" for a in row.actions)
    ]
    if len(recent) >= failures and len(failed) == failures:
        until = datetime.fromisoformat(recent[-1].created_at) + timedelta(seconds=cooldown)
        return (
            f"{failures} remediations in a row did not make it healthy; no automatic action "
            f"until {until.isoformat(timespec='seconds')}"
        )
    return None
