"""Queries over the service's tables: the action ledger, incidents and learned patterns.

Each public method is one transaction, run in the database's worker thread (`Database`); the
writes every run makes are SQLAlchemy Core statements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from devops_agent.config import Settings
from devops_agent.fencing import Lease
from devops_agent.memory import ledger
from devops_agent.memory.db import Control, Database, Incident, LedgerEntry, Pattern, make_engine
from devops_agent.memory.ladder import Change, Rung, climb
from devops_agent.memory.learning import Learned, learned
from devops_agent.memory.runs import OPEN_STATUSES, AlertRecord, RunRecord, current
from devops_agent.policy import PolicyFacts, StepVerdict
from devops_agent.state import HAPPENED, Alert, utcnow


class Store(Database):
    """One object for the agent's own records, on the same DATABASE_URL as the checkpoints."""

    @classmethod
    def from_url(cls, database_url: str) -> Store:
        return cls(make_engine(database_url), name="store-db")

    # -- the action ledger ------------------------------------------------------------------

    async def begin_step(
        self,
        entry: ledger.StepEntry,
        lease: Lease | None,
        settings: Settings,
        judge: Callable[[PolicyFacts], StepVerdict],
    ) -> ledger.Begun:
        """Judge and record a step in one transaction (memory.ledger.begin). Raises LeaseLost
        when `lease` no longer holds the run."""
        await self.setup()

        def record() -> ledger.Begun:
            for tries_left in range(4, -1, -1):
                try:
                    with self.engine.begin() as conn:
                        return ledger.begin(conn, entry, lease, settings, judge)
                except IntegrityError:
                    # Two writers of one run's step at once cannot happen under a lease; without
                    # one (the CLI) the loser reads the winner's row on the next try.
                    if not tries_left:
                        raise
            raise AssertionError("unreachable")

        return await self.call(record)

    async def finish_step(
        self,
        run_id: str,
        attempt: int,
        step: int,
        status: str,
        output: str,
        *,
        reconciled: bool = False,
        reason: str | None = None,
        lease: Lease | None = None,
        also: Callable[[Connection], object] | None = None,
    ) -> None:
        """Record a step's end and, in the same transaction, `also` (its audit row)."""

        def record() -> None:
            for tries_left in range(19, -1, -1):
                try:
                    with self.engine.begin() as conn:
                        ledger.finish(
                            conn, run_id, attempt, step, status, output, reconciled, lease, reason
                        )
                        if also is not None:
                            also(conn)
                    return
                except IntegrityError:
                    if not tries_left:  # another writer took the audit row's number: again
                        raise

        await self.call(record)

    async def policy_facts(
        self,
        run_id: str,
        targets: Mapping[str, str],
        settings: Settings,
        category: str | None = None,
    ) -> PolicyFacts:
        """The facts the policy needs for a plan's targets (name -> identity), in one read."""
        await self.setup()

        def read() -> PolicyFacts:
            with self.engine.connect() as conn:
                return ledger.read_facts(conn, run_id, targets, settings, category=category)

        return await self.call(read)

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
        rungs: list[Rung] | None = None,
        settings: Settings | None = None,
    ) -> list[Change]:
        """Store the finished incident, count how each operation did, and move its patterns on
        the autonomy ladder (idempotent per run: a second call changes nothing)."""
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
        return await self.call(self._record_incident, incident, rungs or [], settings)

    def _record_incident(
        self, incident: dict[str, Any], rungs: list[Rung], settings: Settings | None
    ) -> list[Change]:
        with self.engine.begin() as conn:
            stored = conn.execute(
                self._insert(Incident)
                .values(**incident)
                .on_conflict_do_nothing(index_elements=["run_id"])
            )
            if stored.rowcount == 0:
                return []  # learned already (learn ran again after a resume)
            fixed = int(incident["outcome"] == "resolved")
            succeeded = {
                a["operation"]
                for a in incident["actions"]
                if a.get("status") in HAPPENED and a.get("rollback_of") is None
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
            for rung in rungs:  # a rejected plan's operations have no row yet, maybe
                conn.execute(
                    self._insert(Pattern)
                    .values(
                        service=incident["service"],
                        category=incident["category"],
                        operation=rung.operation,
                        successes=0,
                        failures=0,
                    )
                    .on_conflict_do_nothing(index_elements=["service", "category", "operation"])
                )
            return climb(
                conn,
                incident["service"],
                incident["category"],
                rungs,
                settings.autonomy_promote_after if settings else 3,
                bool(settings and settings.autonomy_ladder and not settings.safety_mode),
            )

    def _insert(self, model: type[Incident] | type[Pattern]) -> Any:
        """INSERT with ON CONFLICT, in this database's dialect."""
        return (postgresql if self.postgres else sqlite).insert(model)

    async def history(self, service: str) -> Learned:
        """What the agent learned about this service recently (memory.learning)."""
        await self.setup()

        def read() -> Learned:
            with self.engine.connect() as conn:
                return learned(conn, service)

        return await self.call(read)

    async def handler_of(self, key: str, run_id: str, since: str) -> str | None:
        """Another run that began a mutating step on this target since `since` (one incident:
        a caller's run meets its dependency's own run, which already acted)."""
        await self.setup()
        query = (
            select(LedgerEntry.run_id)
            .where(
                LedgerEntry.target_key == key,
                LedgerEntry.run_id != run_id,
                LedgerEntry.status.in_(ledger.ACTING),
                LedgerEntry.operation.in_(ledger.MUTATING),
                LedgerEntry.started_at >= since,
            )
            .order_by(LedgerEntry.id.desc())
            .limit(1)
        )
        found = await self.scalars(query)
        return str(found[0]) if found else None

    async def activity(self, key: str) -> str | None:
        """What the agent is doing to this target (its identity): `acting` (a mutating step of
        the ledger is running on it), `settling` (an open run has acted on it: its settle
        window), or None. The events watcher asks (sources/watcher.py)."""
        await self.setup()
        query = (
            select(LedgerEntry.status)
            .join(RunRecord, RunRecord.run_id == LedgerEntry.run_id)
            .where(
                LedgerEntry.target_key == key,
                LedgerEntry.operation.in_(ledger.MUTATING),
                RunRecord.status.in_(OPEN_STATUSES),
            )
        )
        statuses = set(await self.scalars(query))
        if "started" in statuses:
            return "acting"
        return "settling" if statuses else None

    async def patterns(self) -> list[Pattern]:
        """What was learned, per (service, category, operation), with its rung on the ladder."""
        await self.setup()
        query = select(Pattern).order_by(Pattern.service, Pattern.category, Pattern.operation)
        return await self.scalars(query)

    async def run_alerts(self, run_id: str) -> list[Alert]:
        """The run's alerts as intake has them now (alerts that joined it since it started, and
        resolutions), one per (fingerprint, startsAt). Empty for a run intake never saw."""
        await self.setup()
        query = select(AlertRecord).where(AlertRecord.run_id == run_id).order_by(AlertRecord.id)
        return [row.to_alert() for row in current(await self.scalars(query))]

    async def incidents(self, service: str | None = None) -> list[Incident]:
        await self.setup()
        query = select(Incident).order_by(Incident.id)
        if service:
            query = query.where(Incident.service == service)
        return await self.scalars(query)

    # -- switches every replica sees ---------------------------------------------------

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
