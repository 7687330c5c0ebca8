"""The webhook's transaction: store a notification's alerts, deduplicated, and open or join runs.

Intake is the hot path (an Alertmanager flush, a monitoring cycle), so its statements are built
once at import and only executed here: building and compiling a SQLAlchemy statement per call cost
four times what executing it does. Payloads that arrive while a transaction is being written wait
and are written together in the next one (group commit): one hop to the database thread and one
commit for all of them, and each caller still gets its answer only after that commit. A payload
that fails a shared transaction is retried on its own, so it never fails the others.

Every alert event is a row, unique on (fingerprint, startsAt, status). A firing alert whose
resolution is already stored (the resolved notification overtook it) starts nothing: it is stored,
and counted as ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from devops_agent.memory.runs import (
    OPEN_STATUSES,
    QUEUED,
    AlertRecord,
    RunRecord,
    RunRepo,
    now_iso,
)
from devops_agent.state import Alert

INTAKE_TRIES = 5  # replicas storing the same alerts at once: the loser retries and dedupes

# Core statements on the tables (an ORM insert costs a unit of work per call).
_ALERTS = cast(Table, AlertRecord.__table__)
_RUNS = cast(Table, RunRecord.__table__)
# Every stored event of one alert (firing, resolved, or both).
_EVENTS = select(_ALERTS.c.status, _ALERTS.c.run_id).where(
    _ALERTS.c.fingerprint == bindparam("fingerprint"),
    _ALERTS.c.starts_at == bindparam("starts_at"),
)
_OPEN_RUN = select(_RUNS.c.run_id).where(
    _RUNS.c.service == bindparam("service"), _RUNS.c.status.in_(OPEN_STATUSES)
)
# The run of the firing event that a resolved alert ends.
_FIRING_RUN = select(_ALERTS.c.run_id).where(
    _ALERTS.c.fingerprint == bindparam("fingerprint"),
    _ALERTS.c.starts_at == bindparam("starts_at"),
    _ALERTS.c.status == "firing",
    _ALERTS.c.run_id.is_not(None),
)
_NEW_RUN = insert(_RUNS)
_NEW_ALERTS = insert(_ALERTS)
_TOUCH_RUN = (
    update(_RUNS).where(_RUNS.c.run_id == bindparam("rid")).values(updated_at=bindparam("stamp"))
)
# The most alerts Alertmanager left out of one notification of the run (truncatedAlerts).
_TRUNCATED = (
    update(_RUNS)
    .where(_RUNS.c.run_id == bindparam("rid"), _RUNS.c.truncated_alerts < bindparam("n"))
    .values(truncated_alerts=bindparam("n"))
)


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


Groups = list[tuple[str, list[Alert]]]


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
                    return [_store_payload(conn, p.groups, p.truncated) for p in batch]
            except IntegrityError:
                # Another replica stored one of these alerts (or opened the service's run) at the
                # same moment: its transaction has committed, so a retry dedupes.
                if not tries_left:
                    raise
        raise AssertionError("unreachable")


def _store_payload(conn: Connection, groups: Groups, truncated: int) -> Ingested:
    stamp = now_iso()
    result = Ingested([_store_group(conn, service, alerts, stamp) for service, alerts in groups])
    if truncated:
        for run_id in {g.run_id for g in result.groups if g.run_id}:
            conn.execute(_TRUNCATED, {"rid": run_id, "n": truncated})
    return result


def _sort_out(
    conn: Connection, alerts: list[Alert]
) -> tuple[list[Alert], list[Alert], list[str | None]]:
    """The new alerts, the late ones (firing after their resolution), and the runs of repeats."""
    fresh: list[Alert] = []
    late: list[Alert] = []
    repeats: list[str | None] = []
    keys: set[tuple[str, str, str]] = set()
    resolved_here = {(fingerprint_of(a), a.startsAt) for a in alerts if a.status == "resolved"}
    for alert in alerts:
        fingerprint = fingerprint_of(alert)
        key = (fingerprint, alert.startsAt, alert.status)
        if key in keys:
            continue  # the same alert twice in one payload
        keys.add(key)
        events = conn.execute(
            _EVENTS, {"fingerprint": fingerprint, "starts_at": alert.startsAt}
        ).all()
        same = [run_id for status, run_id in events if status == alert.status]
        if same:
            repeats.append(same[0])
        elif alert.status == "firing" and (
            any(status == "resolved" for status, _ in events)
            or (fingerprint, alert.startsAt) in resolved_here
        ):
            late.append(alert)
        else:
            fresh.append(alert)
    return fresh, late, repeats


def _rows(
    alerts: list[Alert], service: str, run_id: str | None, stamp: str
) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "service": service,
            "fingerprint": fingerprint_of(a),
            "starts_at": a.startsAt,
            "status": a.status,
            "alertname": a.alertname,
            "labels": a.labels,
            "annotations": a.annotations,
            "received_at": stamp,
        }
        for a in alerts
    ]


def _store_group(conn: Connection, service: str, alerts: list[Alert], stamp: str) -> GroupOutcome:
    fresh, late, repeats = _sort_out(conn, alerts)
    if late:  # kept, so that their repeats are deduplicated; they start and join nothing
        conn.execute(_NEW_ALERTS, _rows(late, service, None, stamp))
    if not fresh:
        earlier_run = next((r for r in repeats if r), None)
        ignored = len(late) + (0 if earlier_run else len(repeats))
        return GroupOutcome(service, earlier_run, bool(repeats), ignored=ignored)
    open_run = conn.execute(_OPEN_RUN, {"service": service}).first()
    run_id: str | None = open_run[0] if open_run else None
    created = False
    if run_id is None and any(a.status == "firing" for a in fresh):
        run_id, created = str(uuid.uuid4()), True
        conn.execute(
            _NEW_RUN,
            {
                "run_id": run_id,
                "incident_id": f"inc-{uuid.uuid4().hex[:16]}",
                "service": service,
                "status": QUEUED,
                "created_at": stamp,
                "updated_at": stamp,
            },
        )
    elif run_id is not None:
        conn.execute(_TOUCH_RUN, {"rid": run_id, "stamp": stamp})
    finished_run = None if run_id else _run_of_firing(conn, fresh)
    conn.execute(_NEW_ALERTS, _rows(fresh, service, run_id or finished_run, stamp))
    if finished_run is not None:
        # The resolution of an incident whose run already ended: kept on that run, changes nothing.
        return GroupOutcome(service, finished_run, False, ignored=len(late))
    if run_id is None:
        return GroupOutcome(service, None, False, ignored=len(fresh) + len(late))
    joined_resolved = not created and any(a.status == "resolved" for a in fresh)
    return GroupOutcome(service, run_id, False, created, joined_resolved, ignored=len(late))


def _run_of_firing(conn: Connection, alerts: list[Alert]) -> str | None:
    """The run that took the firing alert which these resolved alerts end, if any."""
    for alert in alerts:
        if alert.status != "resolved":
            continue
        row = conn.execute(
            _FIRING_RUN, {"fingerprint": fingerprint_of(alert), "starts_at": alert.startsAt}
        ).first()
        if row is not None:
            return str(row[0])
    return None
