"""The action ledger's transactions: a step is judged and recorded in one, serialised per target.

`begin` runs in one transaction that (on PostgreSQL) first takes an advisory lock on the step's
target identity and one on the global action count, then checks the caller's lease (the
fencing token), then reads the facts the policy needs and asks the policy, and only then
records the step as started. Two runs acting on one database, on any replicas, take turns: the
second one sees the first one's step and joins it, or meets the limit the first one used up.
On SQLite the store has one worker thread and one process (a lock file), so its transactions
are serial anyway.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, text, update

from devops_agent.config import Settings
from devops_agent.fencing import Lease, LeaseLost
from devops_agent.memory.db import Control, Incident, LedgerEntry
from devops_agent.memory.ladder import promoted
from devops_agent.memory.runs import OPEN_STATUSES, AlertRecord, RunRecord, all_resolved, db_now
from devops_agent.operations import OPERATIONS
from devops_agent.policy import PolicyFacts, StepVerdict, TargetFacts
from devops_agent.state import HAPPENED, utcnow

MUTATING = tuple(sorted(name for name, spec in OPERATIONS.items() if spec.mutating))
TAKEN = ("started", "succeeded", "failed")  # ledger statuses that count as an action taken
ACTING = ("started", "succeeded")  # another run's step in these: it is acting on the target
GLOBAL_LOCK = 72_410_010  # pg_advisory_xact_lock key of the global action count
KILL_SWITCH = "actions_paused"


@dataclass
class StepEntry:
    """A step about to be recorded: where it belongs, what it does, and what it would change."""

    run_id: str
    attempt: int
    step: int
    operation: str
    target: str
    target_key: str
    params: dict[str, Any]
    snapshot: dict[str, Any] | None = None
    evidence_at: str | None = None  # when the run gathered the evidence its plan rests on
    category: str | None = None  # the run's category, for the autonomy ladder


@dataclass
class Begun:
    """What `begin` found: the step recorded earlier (run it not again), or the policy's verdict
    (`run`: it is recorded as started now and the caller runs it)."""

    earlier: LedgerEntry | None = None
    verdict: StepVerdict | None = None


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock."""
    return zlib.crc32(name.encode()) - 2**31


def lock_target(conn: Connection, key: str) -> None:
    """Serialise every transaction about this target (and the global count) across replicas."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(1, :k)"), {"k": _lock_key(key)})
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": GLOBAL_LOCK})


def check_fence(conn: Connection, lease: Lease | None, *, deadline: bool = True) -> None:
    """Raise LeaseLost unless `lease` still holds the run (same holder, same generation, and,
    with `deadline`, not run out on the database's clock). No lease (the CLI): no check."""
    if lease is None:
        return
    postgres = conn.dialect.name == "postgresql"
    query = select(RunRecord.owner, RunRecord.lease_generation, RunRecord.lease_until).where(
        RunRecord.run_id == lease.run_id
    )
    row = conn.execute(query.with_for_update() if postgres else query).first()
    if row is None or row.owner != lease.owner or row.lease_generation != lease.generation:
        raise LeaseLost(f"run {lease.run_id} is held by another replica now")
    if deadline:
        until = row.lease_until
        now = conn.execute(select(db_now(postgres))).scalar_one() if postgres else db_now(False)
        if until is None or _naive(until) <= _naive(now):
            raise LeaseLost(f"run {lease.run_id}: the lease ran out")


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def read_facts(
    conn: Connection,
    run_id: str,
    targets: Mapping[str, str],
    settings: Settings,
    evidence_at: str | None = None,
    category: str | None = None,
) -> PolicyFacts:
    """What the policy reads, for the targets (name -> identity) of a plan or a step.

    Another run "handles" a target when it is acting on it now (a step begun or done, its run
    still open), or when it acted on it after `evidence_at`: this run's evidence predates that
    action, so its plan is about a state that is gone.
    """
    now = datetime.now(UTC)
    since = (now - timedelta(hours=1)).isoformat()
    paused = conn.scalar(select(Control.value).where(Control.name == KILL_SWITCH)) == "true"
    taken = (
        LedgerEntry.started_at >= since,
        LedgerEntry.status.in_(TAKEN),
        LedgerEntry.operation.in_(MUTATING),
    )
    total = int(conn.scalar(select(func.count()).select_from(LedgerEntry).where(*taken)) or 0)
    facts = PolicyFacts(actions_paused=paused, total_last_hour=total, now=now)
    alerts = conn.execute(select(AlertRecord).where(AlertRecord.run_id == run_id)).all()
    facts.run_resolved = all_resolved(AlertRecord(**row._mapping) for row in alerts)
    cooldown = (now - timedelta(seconds=settings.remediation_cooldown)).isoformat()
    facts.run_target_keys = {
        str(k)
        for (k,) in conn.execute(
            select(LedgerEntry.target_key).distinct().where(LedgerEntry.run_id == run_id, *taken)
        )
    }
    for name, key in targets.items():
        count = conn.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.target_key == key, *taken)
        )
        recent = LedgerEntry.started_at >= (evidence_at or now.isoformat())
        other = conn.execute(
            select(LedgerEntry.run_id)
            .outerjoin(RunRecord, RunRecord.run_id == LedgerEntry.run_id)
            .where(
                LedgerEntry.target_key == key,
                LedgerEntry.run_id != run_id,
                LedgerEntry.status.in_(ACTING),
                LedgerEntry.operation.in_(MUTATING),
                LedgerEntry.started_at >= since,
                or_(RunRecord.status.in_(OPEN_STATUSES), recent),
            )
            .order_by(LedgerEntry.id)
            .limit(1)
        ).first()
        fixed = conn.scalar(
            select(func.max(LedgerEntry.finished_at))
            .join(Incident, Incident.run_id == LedgerEntry.run_id)
            .where(
                LedgerEntry.target_key == key,
                LedgerEntry.run_id != run_id,
                LedgerEntry.status == "succeeded",
                LedgerEntry.operation.in_(MUTATING),
                LedgerEntry.finished_at >= cooldown,
                Incident.outcome == "resolved",
            )
        )
        if category:
            facts.promoted |= {(name, op) for op in promoted(conn, name, category)}
        facts.targets[name] = TargetFacts(
            key=key,
            actions_last_hour=int(count or 0),
            breaker=breaker(conn, name, settings.breaker_failures, settings.breaker_cooldown),
            handled_by=str(other[0]) if other else None,
            remediated_at=datetime.fromisoformat(fixed) if fixed else None,
        )
    return facts


def breaker(conn: Connection, service: str, failures: int, cooldown: int) -> str | None:
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
        if row.outcome == "escalated" and any(a.get("status") in HAPPENED for a in row.actions)
    ]
    if len(recent) >= failures and len(failed) == failures:
        until = datetime.fromisoformat(recent[-1].created_at) + timedelta(seconds=cooldown)
        return (
            f"{failures} remediations in a row did not make it healthy; no automatic action "
            f"until {until.isoformat(timespec='seconds')}"
        )
    return None


def entry_of(conn: Connection, run_id: str, attempt: int, step: int) -> LedgerEntry | None:
    row = conn.execute(
        select(LedgerEntry).where(
            LedgerEntry.run_id == run_id, LedgerEntry.attempt == attempt, LedgerEntry.step == step
        )
    ).first()
    return LedgerEntry(**row._mapping) if row else None


def begin(
    conn: Connection,
    entry: StepEntry,
    lease: Lease | None,
    settings: Settings,
    judge: Callable[[PolicyFacts], StepVerdict],
) -> Begun:
    """Judge the step against fresh facts and record it (inside the caller's transaction)."""
    lock_target(conn, entry.target_key)
    check_fence(conn, lease)
    earlier = entry_of(conn, entry.run_id, entry.attempt, entry.step)
    if earlier is not None:
        return Begun(earlier=earlier)
    targets = {entry.target: entry.target_key}
    facts = read_facts(conn, entry.run_id, targets, settings, entry.evidence_at, entry.category)
    verdict = judge(facts)
    if verdict.kind in ("run", "refuse"):
        stamp = utcnow()
        conn.execute(
            insert(LedgerEntry).values(
                run_id=entry.run_id,
                attempt=entry.attempt,
                step=entry.step,
                operation=entry.operation,
                target=entry.target,
                target_key=entry.target_key,
                params=entry.params,
                snapshot=entry.snapshot,
                status="started" if verdict.kind == "run" else "refused",
                output="" if verdict.kind == "run" else verdict.why,
                started_at=stamp,
                finished_at=None if verdict.kind == "run" else stamp,
                reconciled=False,
                reason=None if verdict.kind == "run" else verdict.reason,
            )
        )
    return Begun(verdict=verdict)


def finish(
    conn: Connection,
    run_id: str,
    attempt: int,
    step: int,
    status: str,
    output: str,
    reconciled: bool,
    lease: Lease | None,
    reason: str | None = None,
) -> None:
    """Record a step's end, while `lease` still holds the run (its deadline may have passed
    since the step began: what happened is recorded all the same, unless another replica took
    the run over)."""
    check_fence(conn, lease, deadline=False)
    conn.execute(
        update(LedgerEntry)
        .where(
            LedgerEntry.run_id == run_id, LedgerEntry.attempt == attempt, LedgerEntry.step == step
        )
        .values(
            status=status, output=output, finished_at=utcnow(), reconciled=reconciled, reason=reason
        )
    )
