"""Leases as fencing: a replica acts on a run only while it surely holds the run's lease.

The run manager holds a `Lease` per run it drives and makes it the current one (a context
variable) for the graph's nodes. Every backend call checks it first, locally: a replica that
could not renew within half the lease stops acting at once, before another replica may take
the run over. The ledger's begin checks the lease's generation (the fencing token, raised at
every change of holder) in its own transaction, so a replica that was paused past its lease
cannot record, or run, a step.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass


class LeaseLost(Exception):
    """This replica no longer holds the run: it must not act on it."""


@dataclass
class Lease:
    run_id: str
    owner: str
    generation: int
    valid_until: float  # time.monotonic() after which this replica must not act

    def check(self) -> None:
        if time.monotonic() > self.valid_until:
            raise LeaseLost(f"run {self.run_id}: the lease was not renewed in time")


current: ContextVar[Lease | None] = ContextVar("devops_agent_lease", default=None)


def check() -> None:
    """Raise LeaseLost when the current run's lease may have run out (no lease: no check)."""
    lease = current.get()
    if lease is not None:
        lease.check()
