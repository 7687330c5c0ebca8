"""The run manager: graph runs as background work, bounded, one writer per run, recoverable.

Work belongs to the manager, not to a request, so no client can cancel a run. MAX_CONCURRENT_RUNS
workers take work from a priority queue: decisions first (a person is waiting), then recovered
runs, then new runs; a run waiting for approval holds no worker. While alerts are arriving, only
one worker runs: the webhook's 202 comes before the graph's work, which the queue keeps (the
runs table is the durable copy of it). A lock per run makes sure only one worker writes a
LangGraph thread at a time (two writers would fork its history). Every decision (approve,
reject, expired, superseded) first wins a conditional UPDATE on the runs table, so exactly one
decision is handed to the graph.

Across replicas (several processes on one PostgreSQL), a replica executes a run only while it
holds the run's lease in the runs table (`owner`, `lease_until`): it claims the run with a
conditional UPDATE before driving it, a heartbeat renews its leases every third of
RUN_LEASE_SECONDS, and a run it cannot renew is cancelled here before another replica may take it.
An idle replica polls for claimable work every CLAIM_POLL_SECONDS (queued runs, runs with a stored
decision, runs whose holder's lease ran out) with `FOR UPDATE SKIP LOCKED`, so whichever replica
received the webhook or the resume, some replica picks the run up; a taken-over run continues
from its last checkpoint, and the action ledger keeps a step from running twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from devops_agent import faults, fencing
from devops_agent.errors import short_error
from devops_agent.memory.outbox import Outbox
from devops_agent.memory.run_repo import RunRepo
from devops_agent.memory.runs import (
    AWAITING,
    COMPLETED,
    EXPIRED,
    FAILED,
    QUEUED,
    RUNNING,
    Claimed,
    RunRecord,
)
from devops_agent.notify import approval_notice
from devops_agent.runner import Agent, is_settle
from devops_agent.server.events import EventHub
from devops_agent.server.metrics import Metrics
from devops_agent.server.outbox import Deliverer
from devops_agent.server.retention import Retention
from devops_agent.server.views import summary_of
from devops_agent.state import HAPPENED, utcnow

log = logging.getLogger(__name__)

PRIORITY = {"decision": 0, "recover": 1, "start": 2}
HOLD_LIMIT = 1.0  # while alerts pour in, the first worker still takes new work this often
CLAIM_POLL_SECONDS = 0.5  # how often a replica with free workers looks for claimable runs

ACTED = (*HAPPENED, "failed")  # a run with a step in these has acted
SUPERSEDED = {
    "decision": "superseded",
    "approver": "alertmanager",
    "comment": "every alert of the run was resolved before the agent acted",
}


class Pressure:
    """Whether webhook requests are in flight. While any is, the workers wait before they take
    new work, so the 202s come first; the moment none is, they all run again. Never a quiet time
    after each request: under a steady trickle (one alert every 100 ms) the workers would then
    stand back for good. So that a flood delays runs but never stops them, the first worker
    waits at most HOLD_LIMIT for a calm moment."""

    def __init__(self) -> None:
        self.inflight = 0
        self._calm = asyncio.Event()
        self._calm.set()

    @contextmanager
    def request(self) -> Iterator[None]:
        self.inflight += 1
        self._calm.clear()
        try:
            yield
        finally:
            self.inflight -= 1
            if not self.inflight:
                self._calm.set()

    def busy(self) -> bool:
        return self.inflight > 0

    async def calm(self, limit: float | None = None) -> bool:
        """Wait until no request is in flight (True), or `limit` seconds at most (False)."""
        try:
            async with asyncio.timeout(limit):
                while self.inflight:  # a request may have begun again before this waiter woke
                    await self._calm.wait()
        except TimeoutError:
            return False
        return True


class RunManager:
    """Starts, resumes and recovers runs; keeps the runs table in step with the graph."""

    def __init__(
        self,
        agent: Agent,
        repo: RunRepo,
        hub: EventHub,
        metrics: Metrics,
        *,
        max_concurrent: int,
        resume_url: Callable[[str], str],
    ):
        self.agent = agent
        self.repo = repo
        self.hub = hub
        self.metrics = metrics
        self.max_concurrent = max_concurrent
        self.resume_url = resume_url
        self.pressure = Pressure()
        self._queue: asyncio.PriorityQueue[tuple[int, int, str, str]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._workers: list[asyncio.Task[None]] = []
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.executing: set[str] = set()
        settings = agent.ctx.settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = float(settings.run_lease_seconds)
        # Runs this replica holds: the task driving each one (None while it waits in the queue).
        self._held: dict[str, asyncio.Task[None] | None] = {}
        self._leases: dict[str, fencing.Lease] = {}  # of the runs being driven
        self.retention = Retention(repo, agent.checkpointer, settings.checkpoint_retention)
        self.notify_url = settings.notify_webhook_url
        self.deliverer = Deliverer(
            Outbox(repo.engine), repo, settings.notify_webhook_url, self.owner
        )

    def launch(self) -> None:
        """Start the workers and the loops (inside the running event loop)."""
        self._workers = [
            asyncio.create_task(self._worker(i), name=f"run-worker-{i}")
            for i in range(self.max_concurrent)
        ]
        for loop, name in (
            (self._heartbeat, "lease-heartbeat"),
            (self._poll, "claim-poller"),
            (self.retention.loop, "retention"),
            (self.deliverer.loop, "outbox"),
        ):
            task = asyncio.create_task(loop(), name=name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- what the routes call ---------------------------------------------------------------

    def start(self, run_id: str) -> None:
        """Run a queued run in the background."""
        self._spawn(run_id, "start")

    async def decide(self, run_id: str, decision: dict[str, Any]) -> Claimed:
        """Hand a decision to a waiting run; falsy when the run was not waiting (someone won) or
        the decision answers a request the run no longer waits on (`stale`).

        The winner stores the decision and holds the run in one UPDATE, then continues it here;
        if this replica dies first, another one claims the run once the lease ran out.
        """
        claimed = await self.repo.claim_decision(run_id, decision, self.owner, self.lease)
        if not claimed:
            return claimed
        self._held.setdefault(run_id, None)
        self.metrics.decisions.labels(decision=str(decision.get("decision"))).inc()
        self._spawn(run_id, "decision")
        return claimed

    async def supersede_if_resolved(self, run_id: str) -> bool:
        """Close a waiting run as superseded when all its alerts resolved before it acted."""
        row = await self.repo.get(run_id)
        if row is None or row.status != AWAITING or not await self.repo.all_resolved(run_id):
            return False
        if await self._acted(run_id):
            return False
        return bool(await self.decide(run_id, dict(SUPERSEDED)))

    def check_resolved(self, run_id: str) -> None:
        """In the background: supersede the run if a resolution closed all of its alerts."""
        task = asyncio.create_task(self._check_resolved(run_id), name=f"resolved:{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check_resolved(self, run_id: str) -> None:
        try:
            await self.supersede_if_resolved(run_id)
        except Exception:
            log.exception("could not check run %s for supersession", run_id)

    async def recover(self) -> int:
        """Continue the runs that were queued or running when the process stopped.

        SQLite is one process by design: whatever an earlier process held is free now. On
        PostgreSQL other replicas may be executing runs: only unheld ones and expired leases
        are taken now (the poller takes the rest as their leases run out).
        """
        if not self.repo.postgres:
            await self.repo.release()
        return await self._claim_free()

    async def expire_overdue(self) -> int:
        """Resume every run past its deadline with `expired`, a page at a time through all of
        them (the deadline is on the database's clock)."""
        expired, after = 0, 0
        while page := await self.repo.overdue(after):
            for run_id, _ in page:
                expired += bool(await self.decide(run_id, dict(EXPIRED)))
            after = page[-1][1]
        return expired

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def shutdown(self) -> None:
        """Cancel the work; its runs stay `running` or `queued`, and are released so that
        another replica (or this one's next start) continues them from their last checkpoint."""
        tasks = [*self._workers, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers = []
        try:
            await self.repo.release(self.owner)
        except Exception as exc:  # the leases then simply run out
            log.warning("could not release this replica's runs: %s", type(exc).__name__)

    async def idle(self) -> None:
        """Wait until no work is left (tests and benchmarks)."""
        await self._queue.join()

    # -- the work ---------------------------------------------------------------------------

    def _spawn(self, run_id: str, kind: str) -> None:
        self._queue.put_nowait((PRIORITY[kind], next(self._order), run_id, kind))

    async def _worker(self, index: int) -> None:
        while True:
            waited = await self.pressure.calm(None if index else HOLD_LIMIT)
            item = await self._queue.get()
            if waited and self.pressure.busy():
                # Requests came in while this worker waited for work: leave it, in its place.
                self._queue.put_nowait(item)
                self._queue.task_done()
                continue
            _, _, run_id, kind = item
            try:
                await self._drive(run_id, kind)
            except asyncio.CancelledError:
                raise
            except Exception:  # _drive records failures; this only keeps the worker alive
                log.exception("worker %d: run %s", index, run_id)
            finally:
                self._queue.task_done()

    async def _drive(self, run_id: str, kind: str) -> None:
        """Hold the run (or leave it: another replica holds it), then drive it in a task that
        the heartbeat cancels if the lease is lost."""
        async with self._lock(run_id):
            started = time.monotonic()
            generation = await self.repo.claim(run_id, self.owner, self.lease)
            if generation is None:
                self._held.pop(run_id, None)
                return
            lease = fencing.Lease(run_id, self.owner, generation, started + self.lease / 2)
            self._leases[run_id] = lease
            task = asyncio.create_task(self._drive_held(run_id, kind, lease), name=f"run:{run_id}")
            self._held[run_id] = task
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # shutdown
                log.warning("run %s: lease lost; left to the replica that holds it now", run_id)
            finally:
                self._held.pop(run_id, None)
                self._leases.pop(run_id, None)

    async def _drive_held(self, run_id: str, kind: str, lease: fencing.Lease) -> None:
        """Feed the graph what the run needs next, then record where it stopped."""
        self.executing.add(run_id)
        fencing.current.set(lease)  # this task's context: every backend call checks it
        try:
            row = await self.repo.get(run_id)
            if row is None:
                return
            step = await self._first_step(row, kind)
            if step is None:
                return
            await step()
            await self._record_stop(run_id)
        except asyncio.CancelledError:
            raise
        except fencing.LeaseLost as exc:
            log.warning("run %s: %s; left to the replica that holds it now", run_id, exc)
        except Exception as exc:
            if _unavailable(exc):
                # Not the run's fault: leave it running and let it go; it is claimed again
                # (here or elsewhere) once the database answers, from its last checkpoint.
                log.warning("run %s paused: database unavailable (%s)", run_id, type(exc).__name__)
                await self._let_go(run_id)
                return
            log.exception("run %s failed", run_id)
            message = short_error(exc)
            await self.repo.mark(
                run_id, FAILED, error=message, clear_decision=True, owner=self.owner
            )
            self.metrics.runs_finished.labels(outcome="failed").inc()
            self.hub.publish(run_id, "end", {"status": FAILED, "error": message})
        finally:
            self.executing.discard(run_id)

    async def _first_step(self, row: RunRecord, kind: str) -> Callable[[], Awaitable[None]] | None:
        """What to feed the graph first, given the row's status and its last checkpoint."""
        run_id = row.run_id
        if row.status == QUEUED:
            if not await self.repo.mark(run_id, RUNNING, only_from=[QUEUED], owner=self.owner):
                return None
            self.metrics.runs_started.inc()
            if await self._has_checkpoint(run_id):
                return lambda: self._stream(run_id)
            alerts = await self.repo.current_alerts(run_id)
            return lambda: self._stream(run_id, alerts=alerts)
        if row.status != RUNNING:
            return None  # finished, or waiting again (a decision task that lost a race)
        decision = row.pending_decision
        pending = await self.agent.pending_interrupt(run_id)
        if pending is not None and is_settle(pending):
            return lambda: self._stream(run_id, resume={"woke": True})  # the window's next check
        if decision and pending is not None:
            asked, current = decision.get("request_id"), pending.get("request_id")
            if asked and current and asked != current:
                # The decision answered an earlier request: this one waits for a person.
                log.warning(
                    "run %s: a decision for request %s does not answer %s", run_id, asked, current
                )
                return _nothing  # _record_stop records it waiting for this request
            if decision.get("decision") == SUPERSEDED["decision"]:
                return lambda: self._supersede(run_id)
            return lambda: self._stream(run_id, resume=decision)
        if kind == "recover" and not await self._has_checkpoint(run_id):
            alerts = await self.repo.current_alerts(run_id)
            return lambda: self._stream(run_id, alerts=alerts)
        return lambda: self._stream(run_id)  # continue from the last checkpoint

    async def _stream(
        self,
        run_id: str,
        alerts: list[Any] | None = None,
        resume: dict[str, Any] | None = None,
    ) -> None:
        if resume is not None:
            faults.hit("before_resume")
        async for node, update in self.agent.stream(run_id, alerts=alerts, resume=resume):
            if node == "__interrupt__":
                values = [getattr(i, "value", i) for i in update or ()]
                self.hub.publish(run_id, "interrupt", {"node": node, "requests": values})
                continue
            self.metrics.node_updates.labels(node=node).inc()
            self.hub.publish(run_id, "update", {"node": node, "update": update})

    async def _supersede(self, run_id: str) -> None:
        """End a waiting run as superseded: as if escalate had run, then learn records it."""
        config = self.agent.config(run_id)
        values = {"outcome": "superseded", "notes": [SUPERSEDED["comment"]]}
        await self.agent.graph.aupdate_state(config, values, as_node="escalate")
        self.hub.publish(run_id, "update", {"node": "supersede", "update": values})
        await self._stream(run_id)

    async def _record_stop(self, run_id: str) -> None:
        """After the graph stopped: record it as waiting (and notify) or as completed."""
        while True:
            request = await self.agent.pending_interrupt(run_id)
            if request is not None and is_settle(request):
                # Parked until the window's next check: no worker waits; any replica wakes it.
                wake = datetime.fromisoformat(str(request["wake_at"]))
                await self.repo.park(run_id, self.owner, wake)
                self.hub.publish(
                    run_id, "status", {"status": RUNNING, "settling_until": request["wake_at"]}
                )
                return
            if request is None:
                state = await self.agent.state(run_id)
                outcome = state.get("outcome") or "escalated"
                told = state.get("notice") if outcome in ("escalated", "rejected") else None
                await self.repo.mark(
                    run_id,
                    COMPLETED,
                    outcome=outcome,
                    summary=summary_of(state),
                    notice=("escalation", told) if told and self.notify_url else None,
                    clear_decision=True,
                    owner=self.owner,
                )
                self.metrics.runs_finished.labels(outcome=outcome).inc()
                self.hub.publish(run_id, "end", {"status": COMPLETED, "outcome": outcome})
                return
            faults.hit("before_mark_awaiting")
            await self.repo.mark(
                run_id,
                AWAITING,
                only_from=[RUNNING],
                awaiting_since=utcnow(),
                approval_request=request,
                decide_within=self.agent.ctx.settings.approval_timeout,
                notice=(
                    ("approval_request", approval_notice(request, self.resume_url(run_id)))
                    if self.notify_url
                    else None
                ),
                clear_decision=True,
                owner=self.owner,
            )
            self.hub.publish(run_id, "status", {"status": AWAITING})
            # A resolution may have come in while the run was busy: close it now if so.
            if (
                not await self._acted(run_id)
                and await self.repo.all_resolved(run_id)
                and await self.repo.claim_decision(run_id, dict(SUPERSEDED), self.owner, self.lease)
            ):
                self.metrics.decisions.labels(decision="superseded").inc()
                await self._supersede(run_id)
                continue
            return

    async def _acted(self, run_id: str) -> bool:
        state = await self.agent.state(run_id)
        return any(a.get("status") in ACTED for a in state.get("actions") or [])

    async def _has_checkpoint(self, run_id: str) -> bool:
        snapshot = await self.agent.graph.aget_state(self.agent.config(run_id))
        return bool(snapshot.values)

    def _lock(self, run_id: str) -> _RunLock:
        return _RunLock(self._locks, run_id)

    # -- leases -----------------------------------------------------------------------------

    async def _claim_free(self) -> int:
        """Claim as many claimable runs as this replica has idle workers for, and queue them."""
        free = self.max_concurrent - len(self._held) - self._queue.qsize()
        ids = await self.repo.claim_batch(self.owner, self.lease, free)
        for run_id in ids:
            log.info("claimed run %s", run_id)
            self._held.setdefault(run_id, None)
            self._spawn(run_id, "recover")
        return len(ids)

    async def _poll(self) -> None:
        """Idle replicas look for work that nobody holds: this is how a webhook or a resume
        received by one replica, or the runs of a replica that died, reach a free one."""
        while True:
            await asyncio.sleep(CLAIM_POLL_SECONDS)
            if self.pressure.busy():
                continue  # alerts are arriving: intake first
            try:
                await self._claim_free()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not look for claimable runs: %s", type(exc).__name__)

    async def _heartbeat(self) -> None:
        """Renew this replica's leases, each renewal under its own deadline (a sixth of the
        lease); stop the runs whose lease it lost, or could not renew within half the lease.

        A run's Lease is valid for half the lease after the start of its last renewal: every
        backend call checks that first (devops_agent.fencing), so a replica whose renewals hang
        stops acting at once, well before another replica may take the run over.
        """
        while True:
            await asyncio.sleep(self.lease / 3)
            held = list(self._held)
            started = time.monotonic()
            try:
                kept = await asyncio.wait_for(
                    self.repo.renew(self.owner, held, self.lease), self.lease / 6
                )
                for run_id in kept:
                    lease = self._leases.get(run_id)
                    if lease is not None:
                        lease.valid_until = started + self.lease / 2
                for run_id in set(held) - kept:
                    # Not ours any more, or released by the run itself as it stopped running.
                    row = await self.repo.get(run_id)
                    if row is None or row.owner not in (None, self.owner):
                        self._abandon(run_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not renew run leases: %s", type(exc).__name__)
                now = time.monotonic()
                for run_id in held:
                    lease = self._leases.get(run_id)
                    if lease is None or now > lease.valid_until:
                        self._abandon(run_id)

    async def _let_go(self, run_id: str) -> None:
        try:
            await self.repo.release(self.owner, [run_id])
        except Exception as exc:  # the lease then runs out instead
            log.debug("could not release run %s: %s", run_id, type(exc).__name__)

    def _abandon(self, run_id: str) -> None:
        """Stop driving a run this replica no longer holds (another may take it over)."""
        task = self._held.pop(run_id, None)
        if task is not None and not task.done():
            task.cancel()


class _RunLock:
    """A per-run asyncio lock, forgotten when nobody holds or waits for it."""

    def __init__(self, locks: dict[str, tuple[asyncio.Lock, int]], run_id: str):
        self.locks = locks
        self.run_id = run_id

    async def __aenter__(self) -> None:
        lock, users = self.locks.get(self.run_id, (asyncio.Lock(), 0))
        self.locks[self.run_id] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._forget()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.locks[self.run_id][0].release()
        self._forget()

    def _forget(self) -> None:
        lock, users = self.locks[self.run_id]
        if users <= 1:
            self.locks.pop(self.run_id, None)
        else:
            self.locks[self.run_id] = (lock, users - 1)


async def _nothing() -> None:
    """A first step that feeds the graph nothing."""


def _unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is the database being unreachable, not a bug."""
    while exc is not None:
        if isinstance(exc, psycopg.OperationalError | OperationalError | InterfaceError):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False
