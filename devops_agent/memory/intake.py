"""The webhook's transaction: store notifications' alerts, deduplicated, and open or join runs.

Intake is the hot path (an Alertmanager flush, a monitoring cycle, a burst of them), so:

- Notifications that arrive while a transaction is being written wait and are written together
  in the next one (group commit): one hop to the database thread and one commit for all of them.
  Each caller gets its answer only after that commit. A notification that fails the shared
  transaction is retried on its own, so that it never fails the others.
- A transaction reads what the database knows about the batch's alerts and services in two
  queries, decides every notification in memory, in arrival order (a later one sees what an
  earlier one stored), then writes with one executemany per table. Its statements are built once,
  at import: building and compiling a SQLAlchemy statement per call cost more than running it.
  The writes go to the driver as SQL text (`exec_driver_sql`, compiled once per dialect, the
  JSON columns through the dialect's own bind processor): SQLAlchemy's per-row parameter
  handling of a compiled insert was most of intake's own time under load. Errors still come
  wrapped as SQLAlchemy's (an IntegrityError is retried, the webhook answers 503 on others).

Every alert event is a row, unique on (fingerprint, startsAt, status). A repeat (the same event
again) is deduplicated. A firing alert whose resolution is already stored (the resolved
notification overtook it, or came in the same one) starts nothing: it is stored, and counted as
ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from devops_agent.memory.intake_sql import writes
from devops_agent.memory.run_repo import RunRepo
from devops_agent.memory.runs import OPEN_STATUSES, QUEUED, AlertRecord, RunRecord
from devops_agent.state import Alert, utcnow

INTAKE_TRIES = 5  # replicas storing the same alerts at once: the loser retries and dedupes
# Turns of the event loop the writer gives before it takes what waits: requests whose bytes are
# already read (or ready on their sockets) reach intake meanwhile and share the transaction. Each
# transaction costs about a millisecond of CPU whatever its size; a turn costs microseconds.
GATHER_TURNS = 3
IN_CHUNK = 500  # values per IN (...) list: well under SQLite's limit of bound parameters

# Core statements on the tables (an ORM insert costs a unit of work per call).
_ALERTS = cast(Table, AlertRecord.__table__)
_RUNS = cast(Table, RunRecord.__table__)
_EVENTS = select(
    _ALERTS.c.fingerprint, _ALERTS.c.starts_at, _ALERTS.c.status, _ALERTS.c.run_id
).where(_ALERTS.c.fingerprint.in_(bindparam("fingerprints", expanding=True)))
_OPEN_RUNS = select(_RUNS.c.service, _RUNS.c.run_id).where(
    _RUNS.c.service.in_(bindparam("services", expanding=True)),
    _RUNS.c.status.in_(OPEN_STATUSES),
)
# The same on SQLite, through the partial unique index that holds exactly the open runs: its
# planner, without statistics, takes the status index for more than a few services and reads
# every queued run (2 ms a batch with 20,000 queued, most of intake's time under a burst).
# (The condition is the index's, OPEN_STATUSES word for word: SQLite matches it as written.)
_OPEN_RUNS_SQLITE = text(
    "SELECT service, run_id FROM runs INDEXED BY uq_runs_open_service WHERE service IN :services"
    " AND status IN ('queued', 'running', 'awaiting_approval')"
).bindparams(bindparam("services", expanding=True))
_NEW_RUN = insert(_RUNS)
_NEW_ALERT = insert(_ALERTS)
_TOUCH_RUN = (
    update(_RUNS).where(_RUNS.c.run_id == bindparam("rid")).values(updated_at=bindparam("stamp"))
)
# The most alerts Alertmanager left out of one notification of the run (truncatedAlerts).
_TRUNCATED = (
    update(_RUNS)
    .where(_RUNS.c.run_id == bindparam("rid"), _RUNS.c.truncated_alerts < bindparam("n"))
    .values(truncated_alerts=bindparam("n"))
)

Groups = list[tuple[str, list[Alert]]]


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
class Ingested:
    groups: list[GroupOutcome] = field(default_factory=list)

    @property
    def ignored(self) -> int:
        return sum(g.ignored for g in self.groups)


@dataclass
class _Payload:
    groups: Groups
    truncated: int
    done: asyncio.Future[Ingested]


class AlertIntake:
    """Stores notifications on the runs' database (the repo's worker thread), group-committed.

    One writer task at a time takes everything waiting into one transaction, so intake in this
    process is serialised; the unique constraints guard across processes.
    """

    def __init__(self, repo: RunRepo):
        self.repo = repo
        self._waiting: list[_Payload] = []
        self._writer: asyncio.Task[None] | None = None

    async def ingest(
        self, groups: Sequence[tuple[str, list[Alert]]], truncated: int = 0
    ) -> Ingested:
        """Store every alert (deduplicated) and attach it to its service's open run, or a new one.

        `truncated`: how many alerts Alertmanager left out of the notification, kept on its runs.
        When this returns, the alerts are committed; it raises when they could not be stored.
        """
        loop = asyncio.get_running_loop()
        payload = _Payload(list(groups), truncated, loop.create_future())
        self._waiting.append(payload)
        if self._writer is None:
            self._writer = loop.create_task(self._write(), name="alert-intake")
        return await payload.done

    async def _write(self) -> None:
        """Write what waits, one transaction at a time, until nothing waits."""
        batch: list[_Payload] = []
        try:
            while self._waiting:
                for _ in range(GATHER_TURNS):  # let requests already read join this batch
                    await asyncio.sleep(0)
                batch, self._waiting = self._waiting, []
                outcomes: list[Ingested | Exception]
                try:
                    outcomes = await self.repo.call(self._store_batch, batch)
                except Exception as exc:  # the database thread is gone
                    outcomes = [exc] * len(batch)
                for payload, outcome in zip(batch, outcomes, strict=True):
                    if payload.done.done():
                        continue  # its caller went away; the alerts are stored all the same
                    if isinstance(outcome, Exception):
                        payload.done.set_exception(outcome)
                    else:
                        payload.done.set_result(outcome)
                batch = []
        finally:
            self._writer = None
            for payload in [*batch, *self._waiting]:  # only when cancelled (shutdown)
                payload.done.cancel()
            self._waiting = []

    def _store_batch(self, batch: list[_Payload]) -> list[Ingested | Exception]:
        """In the database thread: the batch in one transaction, or each payload on its own when
        the shared transaction fails (one bad payload must not fail the others)."""
        if len(batch) > 1:
            try:
                return list(self._store(batch))
            except Exception:  # noqa: S110 (each payload is tried alone below)
                pass
        results: list[Ingested | Exception] = []
        for payload in batch:
            try:
                results.extend(self._store([payload]))
            except Exception as exc:
                results.append(exc)
        return results

    def _store(self, batch: list[_Payload]) -> list[Ingested]:
        for tries_left in range(INTAKE_TRIES - 1, -1, -1):
            try:
                with self.repo.engine.begin() as conn:
                    return _store(conn, batch)
            except IntegrityError:
                # Another replica stored one of these alerts (or opened the service's run) at the
                # same moment: its transaction has committed, so a retry dedupes.
                if not tries_left:
                    raise
        raise AssertionError("unreachable")


def _store(conn: Connection, batch: list[_Payload]) -> list[Ingested]:
    """Read, decide in arrival order, write: one transaction for the whole batch."""
    known = _Known.read(conn, [group for payload in batch for group in payload.groups])
    results = []
    for payload in batch:
        result = Ingested([known.decide(service, alerts) for service, alerts in payload.groups])
        if payload.truncated:
            for run_id in {g.run_id for g in result.groups if g.run_id}:
                known.truncate(run_id, payload.truncated)
        results.append(result)
    known.write(conn)
    return results


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), IN_CHUNK):
        yield ordered[start : start + IN_CHUNK]


@dataclass
class _Known:
    """What the database holds about a batch's alerts and services, kept current while the batch
    is decided, and the rows that deciding it adds."""

    # (fingerprint, startsAt) -> {status: run id or None}: the stored events of each alert
    events: dict[tuple[str, str], dict[str, str | None]]
    open_runs: dict[str, str]  # service -> its open run
    new_runs: list[dict[str, Any]] = field(default_factory=list)
    new_alerts: list[dict[str, Any]] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    truncated: dict[str, int] = field(default_factory=dict)
    stamp: str = field(default_factory=utcnow)  # received_at and updated_at of the batch

    @classmethod
    def read(cls, conn: Connection, groups: Groups) -> _Known:
        events: dict[tuple[str, str], dict[str, str | None]] = {}
        fingerprints = (fingerprint_of(a) for _, alerts in groups for a in alerts)
        for chunk in _chunks(fingerprints):
            for fingerprint, starts_at, status, run_id in conn.execute(
                _EVENTS, {"fingerprints": chunk}
            ):
                events.setdefault((fingerprint, starts_at), {})[status] = run_id
        open_runs: dict[str, str] = {}
        query = _OPEN_RUNS_SQLITE if conn.dialect.name == "sqlite" else _OPEN_RUNS
        for chunk in _chunks(service for service, _ in groups):
            for service, run_id in conn.execute(query, {"services": chunk}):
                open_runs[service] = run_id
        return cls(events, open_runs)

    def decide(self, service: str, alerts: list[Alert]) -> GroupOutcome:
        """One service's alerts of one notification, given all that came before them."""
        fresh, late, repeats = self._sort_out(alerts)
        self._add(late, service, None)  # kept so that their repeats dedupe; they start nothing
        if not fresh:
            earlier_run = next((r for r in repeats if r), None)
            ignored = len(late) + (0 if earlier_run else len(repeats))
            return GroupOutcome(service, earlier_run, bool(repeats), ignored=ignored)
        run_id = self.open_runs.get(service)
        created = False
        if run_id is None and any(a.status == "firing" for a in fresh):
            run_id, created = str(uuid.uuid4()), True
            self.open_runs[service] = run_id
            self.new_runs.append(
                {
                    "run_id": run_id,
                    "incident_id": f"inc-{uuid.uuid4().hex[:16]}",
                    "service": service,
                    "status": QUEUED,
                    "created_at": self.stamp,
                    "updated_at": self.stamp,
                }
            )
        elif run_id is not None:
            self.touched.add(run_id)
        finished_run = None if run_id else self._run_of_firing(fresh)
        self._add(fresh, service, run_id or finished_run)
        if finished_run is not None:
            # The resolution of an incident whose run already ended: kept on that run.
            return GroupOutcome(service, finished_run, False, ignored=len(late))
        if run_id is None:
            return GroupOutcome(service, None, False, ignored=len(fresh) + len(late))
        joined_resolved = not created and any(a.status == "resolved" for a in fresh)
        return GroupOutcome(service, run_id, False, created, joined_resolved, ignored=len(late))

    def truncate(self, run_id: str, count: int) -> None:
        self.truncated[run_id] = max(count, self.truncated.get(run_id, 0))

    def write(self, conn: Connection) -> None:
        raw = writes(conn.dialect)
        if raw is None:
            self._write_core(conn)
            return
        if self.new_runs:
            raw.new_run.run(conn, self.new_runs)
        if self.touched:
            raw.touch_run.run(conn, [{"rid": r, "stamp": self.stamp} for r in self.touched])
        if self.new_alerts:
            raw.new_alert.run(conn, self.new_alerts)
        if self.truncated:
            raw.truncated.run(conn, [{"rid": r, "n": n} for r, n in self.truncated.items()])

    def _write_core(self, conn: Connection) -> None:
        if self.new_runs:
            conn.execute(_NEW_RUN, self.new_runs)
        if self.touched:
            conn.execute(_TOUCH_RUN, [{"rid": r, "stamp": self.stamp} for r in self.touched])
        if self.new_alerts:
            conn.execute(_NEW_ALERT, self.new_alerts)
        if self.truncated:
            conn.execute(_TRUNCATED, [{"rid": r, "n": n} for r, n in self.truncated.items()])

    def _sort_out(self, alerts: list[Alert]) -> tuple[list[Alert], list[Alert], list[str | None]]:
        """The new alerts, the late ones (firing after their resolution), and the runs of repeats."""
        fresh: list[Alert] = []
        late: list[Alert] = []
        repeats: list[str | None] = []
        keys: set[tuple[str, str, str]] = set()
        resolved_here = {(fingerprint_of(a), a.startsAt) for a in alerts if a.status == "resolved"}
        for alert in alerts:
            fingerprint = fingerprint_of(alert)
            if (fingerprint, alert.startsAt, alert.status) in keys:
                continue  # the same alert twice in one payload
            keys.add((fingerprint, alert.startsAt, alert.status))
            stored = self.events.get((fingerprint, alert.startsAt), {})
            if alert.status in stored:
                repeats.append(stored[alert.status])
            elif alert.status == "firing" and (
                "resolved" in stored or (fingerprint, alert.startsAt) in resolved_here
            ):
                late.append(alert)
            else:
                fresh.append(alert)
        return fresh, late, repeats

    def _run_of_firing(self, alerts: list[Alert]) -> str | None:
        """The run that took the firing alert which one of these resolved alerts ends, if any."""
        for alert in alerts:
            if alert.status == "resolved":
                run_id = self.events.get((fingerprint_of(alert), alert.startsAt), {}).get("firing")
                if run_id is not None:
                    return run_id
        return None

    def _add(self, alerts: list[Alert], service: str, run_id: str | None) -> None:
        for a in alerts:
            fingerprint = fingerprint_of(a)
            self.events.setdefault((fingerprint, a.startsAt), {})[a.status] = run_id
            self.new_alerts.append(
                {
                    "run_id": run_id,
                    "service": service,
                    "fingerprint": fingerprint,
                    "starts_at": a.startsAt,
                    "status": a.status,
                    "alertname": a.alertname,
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "received_at": self.stamp,
                }
            )
