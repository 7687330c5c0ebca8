"""Queries over the service's tables: the action ledger, incidents and learned patterns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from devops_agent.memory.db import (
    Control,
    Incident,
    LedgerEntry,
    Pattern,
    create_schema,
    make_engine,
)
from devops_agent.state import utcnow


class Store:
    """One object for the agent's own records, on the same DATABASE_URL as the checkpoints."""

    def __init__(self, engine: AsyncEngine, directory: Path | None = None):
        self.engine = engine
        self.directory = directory
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._ready = False

    @classmethod
    def from_url(cls, database_url: str) -> Store:
        directory = None
        if database_url.startswith("sqlite") and ":///" in database_url:
            directory = Path(database_url.split(":///", 1)[1]).parent
        return cls(make_engine(database_url), directory)

    async def setup(self) -> None:
        """Create the tables once (idempotent)."""
        if not self._ready:
            if self.directory is not None:
                await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
            await create_schema(self.engine)
            self._ready = True

    async def close(self) -> None:
        await self.engine.dispose()

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
        async with self.sessions() as session:
            entry = LedgerEntry(
                run_id=run_id,
                attempt=attempt,
                step=step,
                operation=operation,
                target=target,
                params=params,
                status="started",
                started_at=utcnow(),
            )
            session.add(entry)
            try:
                await session.commit()
                return None
            except IntegrityError:
                await session.rollback()
        return await self.ledger_entry(run_id, attempt, step)

    async def finish_step(
        self, run_id: str, attempt: int, step: int, status: str, output: str
    ) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(LedgerEntry)
                .where(
                    LedgerEntry.run_id == run_id,
                    LedgerEntry.attempt == attempt,
                    LedgerEntry.step == step,
                )
                .values(status=status, output=output, finished_at=utcnow())
            )
            await session.commit()

    async def ledger_entry(self, run_id: str, attempt: int, step: int) -> LedgerEntry | None:
        async with self.sessions() as session:
            return (
                await session.execute(
                    select(LedgerEntry).where(
                        LedgerEntry.run_id == run_id,
                        LedgerEntry.attempt == attempt,
                        LedgerEntry.step == step,
                    )
                )
            ).scalar_one_or_none()

    async def ledger(self, run_id: str) -> list[LedgerEntry]:
        await self.setup()
        async with self.sessions() as session:
            rows = await session.execute(
                select(LedgerEntry).where(LedgerEntry.run_id == run_id).order_by(LedgerEntry.id)
            )
            return list(rows.scalars())

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
        async with self.sessions() as session:
            exists = (
                await session.execute(select(Incident.id).where(Incident.run_id == run_id))
            ).first()
            if exists:
                return
            session.add(
                Incident(
                    run_id=run_id,
                    service=service,
                    category=category,
                    root_cause=root_cause,
                    confidence=confidence,
                    outcome=outcome,
                    evidence=evidence,
                    actions=actions,
                    attempts=attempts,
                    created_at=utcnow(),
                )
            )
            fixed = outcome == "resolved"
            for operation in {a["operation"] for a in actions if a.get("status") == "succeeded"}:
                pattern = (
                    await session.execute(
                        select(Pattern).where(
                            Pattern.service == service,
                            Pattern.category == category,
                            Pattern.operation == operation,
                        )
                    )
                ).scalar_one_or_none()
                if pattern is None:
                    pattern = Pattern(
                        service=service,
                        category=category,
                        operation=operation,
                        successes=0,
                        failures=0,
                    )
                    session.add(pattern)
                if fixed:
                    pattern.successes += 1
                else:
                    pattern.failures += 1
            await session.commit()

    async def history(self, service: str) -> dict[tuple[str, str], tuple[int, int]]:
        """(category, operation) -> (successes, failures) on this service."""
        await self.setup()
        async with self.sessions() as session:
            rows = await session.execute(select(Pattern).where(Pattern.service == service))
            return {(p.category, p.operation): (p.successes, p.failures) for p in rows.scalars()}

    async def incidents(self, service: str | None = None) -> list[Incident]:
        await self.setup()
        async with self.sessions() as session:
            query = select(Incident).order_by(Incident.id)
            if service:
                query = query.where(Incident.service == service)
            return list((await session.execute(query)).scalars())

    # -- what the policy needs --------------------------------------------------------------

    async def policy_inputs(
        self,
        since: datetime,
        operations: set[str],
        services: list[str],
        failures: int,
        cooldown: int,
    ) -> tuple[bool, dict[str, int], int, dict[str, str]]:
        """Everything the policy reads, in one session: whether actions are paused (the kill
        switch), mutating actions since `since` on each of `services` and in all, and open
        breakers per service."""
        await self.setup()
        async with self.sessions() as session:
            paused = await session.get(Control, "actions_paused")
            counts, total = await _actions_since(session, since, operations, services)
            breakers = {}
            for service in dict.fromkeys(services):
                why = await _breaker(session, service, failures, cooldown)
                if why:
                    breakers[service] = why
        return (paused is not None and paused.value == "true"), counts, total, breakers

    async def get_control(self, name: str) -> str | None:
        await self.setup()
        async with self.sessions() as session:
            row = await session.get(Control, name)
            return row.value if row else None

    async def set_control(self, name: str, value: str, by: str = "") -> None:
        await self.setup()
        async with self.sessions() as session:
            row = await session.get(Control, name)
            if row is None:
                session.add(Control(name=name, value=value, updated_at=utcnow(), updated_by=by))
            else:
                row.value, row.updated_at, row.updated_by = value, utcnow(), by
            await session.commit()


async def _actions_since(
    session: AsyncSession, since: datetime, operations: set[str], services: list[str]
) -> tuple[dict[str, int], int]:
    """Mutating actions (started, succeeded or failed) since `since`: per service, and in all."""
    recent = (
        LedgerEntry.started_at >= since.isoformat(),
        LedgerEntry.status.in_(("started", "succeeded", "failed")),
        LedgerEntry.operation.in_(sorted(operations)),
    )
    rows = await session.execute(
        select(LedgerEntry.target, func.count())
        .where(*recent, LedgerEntry.target.in_(services))
        .group_by(LedgerEntry.target)
    )
    total = await session.scalar(select(func.count()).select_from(LedgerEntry).where(*recent))
    return {str(target): int(count) for target, count in rows}, int(total or 0)


async def _breaker(session: AsyncSession, service: str, failures: int, cooldown: int) -> str | None:
    """Why the circuit breaker is open for a service, or None.

    It opens after `failures` incidents in a row, within `cooldown` seconds, in which the agent
    acted and the service was still not healthy (outcome escalated after actions).
    """
    since = (datetime.now(UTC) - timedelta(seconds=cooldown)).isoformat()
    rows = await session.execute(
        select(Incident)
        .where(Incident.service == service, Incident.created_at >= since)
        .order_by(Incident.id.desc())
        .limit(failures)
    )
    recent = list(rows.scalars())
    failed = [
        i
        for i in recent
        if i.outcome == "escalated" and any(a.get("status") == "succeeded" for a in i.actions)
    ]
    if len(recent) >= failures and len(failed) == failures:
        until = datetime.fromisoformat(recent[-1].created_at) + timedelta(seconds=cooldown)
        return (
            f"{failures} remediations in a row did not make it healthy; no automatic action "
            f"until {until.isoformat(timespec='seconds')}"
        )
    return None
