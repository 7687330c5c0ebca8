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
from collections.abc import Callable
from typing import Any

from devops_agent import fencing
from devops_agent.errors import short_error
from devops_agent.memory.db import unavailable
from devops_agent.memory.outbox import Outbox
from devops_agent.memory.run_repo import RunRepo
from devops_agent.memory.runs import (
    AWAITING,
    EXPIRED,
    FAILED,
    Claimed,
)
from devops_agent.orchestration.driver import SUPERSEDED, RunDriver
from devops_agent.orchestration.events import EventHub
from devops_agent.orchestration.keeper import LeaseKeeper
from devops_agent.orchestration.metrics import Metrics
from devops_agent.orchestration.outbox import Deliverer
from devops_agent.orchestration.pressure import HOLD_LIMIT, Pressure
from devops_agent.orchestration.retention import Retention
from devops_agent.orchestration.runlock import RunLock
from devops_agent.orchestration.slack import SlackChannel
from devops_agent.runner import Agent

log = logging.getLogger(__name__)

PRIORITY = {"decision": 0, "recover": 1, "start": 2}
CLAIM_POLL_SECONDS = 0.5  # how often a replica with free workers looks for claimable runs


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
        slack: SlackChannel | None = None,
    ):
        self.agent = agent
        self.slack = slack
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
        self.keeper = LeaseKeeper(repo, self.owner, self.lease)
        self.retention = Retention(repo, agent.checkpointer, settings.checkpoint_retention)
        self.driver = RunDriver(
            agent,
            repo,
            hub,
            metrics,
            self.owner,
            self.lease,
            resume_url,
            # Any channel makes the driver write notices into the outbox.
            settings.notify_webhook_url or (settings.slack_channel if slack else None),
        )
        self.deliverer = Deliverer(
            Outbox(repo.engine), repo, settings.notify_webhook_url, self.owner, slack
        )

    def launch(self) -> None:
        """Start the workers and the loops (inside the running event loop)."""
        self._workers = [
            asyncio.create_task(self._worker(i), name=f"run-worker-{i}")
            for i in range(self.max_concurrent)
        ]
        for loop, name in (
            (self.keeper.heartbeat, "lease-heartbeat"),
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
        self.keeper.held.setdefault(run_id, None)
        self.metrics.decisions.labels(decision=str(decision.get("decision"))).inc()
        self._spawn(run_id, "decision")
        return claimed

    async def supersede_if_resolved(self, run_id: str) -> bool:
        """Close a waiting run as superseded when all its alerts resolved before it acted."""
        row = await self.repo.get(run_id)
        if row is None or row.status != AWAITING or not await self.repo.all_resolved(run_id):
            return False
        if await self.driver.acted(run_id):
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
                self.keeper.held.pop(run_id, None)
                return
            lease = fencing.Lease(run_id, self.owner, generation, started + self.lease / 2)
            self.keeper.leases[run_id] = lease
            task = asyncio.create_task(self._drive_held(run_id, kind, lease), name=f"run:{run_id}")
            self.keeper.held[run_id] = task
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # shutdown
                log.warning("run %s: lease lost; left to the replica that holds it now", run_id)
            finally:
                self.keeper.held.pop(run_id, None)
                self.keeper.leases.pop(run_id, None)

    async def _drive_held(self, run_id: str, kind: str, lease: fencing.Lease) -> None:
        """Feed the graph what the run needs next, then record where it stopped."""
        self.executing.add(run_id)
        fencing.current.set(lease)  # this task's context: every backend call checks it
        try:
            row = await self.repo.get(run_id)
            if row is None:
                return
            step = await self.driver.first_step(row, kind)
            if step is None:
                return
            await step()
            await self.driver.record_stop(run_id)
        except asyncio.CancelledError:
            raise
        except fencing.LeaseLost as exc:
            log.warning("run %s: %s; left to the replica that holds it now", run_id, exc)
        except Exception as exc:
            if unavailable(exc):
                # Not the run's fault: leave it running and let it go; it is claimed again
                # (here or elsewhere) once the database answers, from its last checkpoint.
                log.warning("run %s paused: database unavailable (%s)", run_id, type(exc).__name__)
                await self.keeper.let_go(run_id)
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

    def _lock(self, run_id: str) -> RunLock:
        return RunLock(self._locks, run_id)

    # -- leases -----------------------------------------------------------------------------

    async def _claim_free(self) -> int:
        """Claim as many claimable runs as this replica has idle workers for, and queue them."""
        free = self.max_concurrent - len(self.keeper.held) - self._queue.qsize()
        ids = await self.repo.claim_batch(self.owner, self.lease, free)
        for run_id in ids:
            log.info("claimed run %s", run_id)
            self.keeper.held.setdefault(run_id, None)
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
