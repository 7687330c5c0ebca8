"""In-process fan-out of run events to Server-Sent Events subscribers.

Events are best effort (a slow subscriber loses the oldest ones, never blocks a run); the run's
state, read from its checkpoint, is the truth a client falls back on.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from devops_agent.redact import redact_data

QUEUE_SIZE = 256


class EventHub:
    """Per-run subscriber queues; what this replica publishes also goes to `relay` (the other
    replicas, server/relay.py), whose events come back in through `deliver`."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self.relay: Callable[[str, str, dict[str, Any]], None] | None = None

    def publish(self, run_id: str, event: str, data: dict[str, Any]) -> None:
        """An event of a run this replica executes."""
        self.deliver(run_id, event, data)
        if self.relay is not None:
            self.relay(run_id, event, data)

    def deliver(self, run_id: str, event: str, data: dict[str, Any]) -> None:
        """Hand an event to this replica's subscribers of the run."""
        for queue in list(self._subscribers.get(run_id, ())):
            if queue.full():
                queue.get_nowait()  # drop the oldest rather than block the run
            queue.put_nowait({"event": event, "data": data})

    @asynccontextmanager
    async def subscribe(self, run_id: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[run_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[run_id].discard(queue)
            if not self._subscribers[run_id]:
                self._subscribers.pop(run_id, None)


def sse(event: str, data: Any) -> str:
    """One Server-Sent Event frame."""
    payload = json.dumps(redact_data(data), default=str, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"
