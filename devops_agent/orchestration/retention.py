"""Retention: delete the checkpoints of runs finished more than CHECKPOINT_RETENTION ago.

Checkpoints are most of the database (every step of every run, with its state), and a finished
run never needs them again; what people look for later stays: the run's row, its alerts and
approvals, the incident `learn` recorded, the action ledger and the audit trail. The deletion
goes through the saver's own `adelete_thread`, so it works on every backend; every replica runs
the sweep, and a thread deleted twice is simply already gone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from langgraph.checkpoint.base import BaseCheckpointSaver

from devops_agent.memory.run_repo import RunRepo

log = logging.getLogger(__name__)
BATCH = 200


def retention_sweep_interval(retention: float) -> float:
    """Often enough to keep up, rarely enough to cost nothing: a quarter of the retention,
    between half a second and ten minutes."""
    return min(600.0, max(0.5, retention / 4))


class Retention:
    """Prunes finished runs' checkpoints; `loop()` is the periodic task."""

    def __init__(self, repo: RunRepo, saver: BaseCheckpointSaver, retention: float):
        self.repo = repo
        self.saver = saver
        self.retention = retention

    async def prune(self) -> int:
        """One sweep: the number of runs whose checkpoints were deleted."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=self.retention)).isoformat(
            timespec="microseconds"
        )
        pruned = 0
        while True:
            run_ids = await self.repo.prunable(cutoff, BATCH)
            if not run_ids:
                return pruned
            for run_id in run_ids:
                await self.saver.adelete_thread(run_id)
            pruned += await self.repo.mark_pruned(run_ids)
            if len(run_ids) < BATCH:
                return pruned

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(retention_sweep_interval(self.retention))
            try:
                pruned = await self.prune()
                if pruned:
                    log.info("deleted the checkpoints of %d finished run(s)", pruned)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("checkpoint retention sweep failed: %s", type(exc).__name__)
