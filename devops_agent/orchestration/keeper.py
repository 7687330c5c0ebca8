"""The lease keeper: the runs this replica holds, their leases renewed, and what is dropped when
a renewal fails or another replica took a run over (devops_agent/fencing.py)."""

from __future__ import annotations

import asyncio
import logging
import time

from devops_agent import fencing
from devops_agent.memory.run_repo import RunRepo

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, repo: RunRepo, owner: str, lease: float):
        self.repo = repo
        self.owner = owner
        self.lease = lease
        # Runs this replica holds: the task driving each one (None while it waits in the queue).
        self.held: dict[str, asyncio.Task[None] | None] = {}
        self.leases: dict[str, fencing.Lease] = {}  # of the runs being driven

    async def heartbeat(self) -> None:
        """Renew this replica's leases, each renewal under its own deadline (a sixth of the
        lease); stop the runs whose lease it lost, or could not renew within half the lease.

        A run's Lease is valid for half the lease after the start of its last renewal: every
        backend call checks that first (devops_agent.fencing), so a replica whose renewals hang
        stops acting at once, well before another replica may take the run over.
        """
        while True:
            await asyncio.sleep(self.lease / 3)
            held = list(self.held)
            started = time.monotonic()
            try:
                kept = await asyncio.wait_for(
                    self.repo.renew(self.owner, held, self.lease), self.lease / 6
                )
                for run_id in kept:
                    lease = self.leases.get(run_id)
                    if lease is not None:
                        lease.valid_until = started + self.lease / 2
                for run_id in set(held) - kept:
                    # Not ours any more, or released by the run itself as it stopped running.
                    row = await self.repo.get(run_id)
                    if row is None or row.owner not in (None, self.owner):
                        self.abandon(run_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not renew run leases: %s", type(exc).__name__)
                now = time.monotonic()
                for run_id in held:
                    lease = self.leases.get(run_id)
                    if lease is None or now > lease.valid_until:
                        self.abandon(run_id)

    async def let_go(self, run_id: str) -> None:
        try:
            await self.repo.release(self.owner, [run_id])
        except Exception as exc:  # the lease then runs out instead
            log.debug("could not release run %s: %s", run_id, type(exc).__name__)

    def abandon(self, run_id: str) -> None:
        """Stop driving a run this replica no longer holds (another may take it over)."""
        task = self.held.pop(run_id, None)
        if task is not None and not task.done():
            task.cancel()
