"""Run events between replicas on one PostgreSQL, through LISTEN/NOTIFY.

Only the replica that executes a run publishes its node updates, but a client may follow the run
(GET /runs/{id}/events) on any replica. Each replica NOTIFYs what it publishes on one channel and
LISTENs to it, handing the other replicas' events to its own subscribers. A NOTIFY payload holds
at most 8,000 bytes: a bigger event travels as its node name (or status) with `"truncated": true`;
the run itself (GET /runs/{id}) has everything. Best effort, like the hub: while the database is
unreachable, events are dropped and both connections retry; the event stream's own reading of the
run's row still shows each change of status and the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from devops_agent.orchestration.events import EventHub

log = logging.getLogger(__name__)
CHANNEL = "devops_agent_run_events"
MAX_PAYLOAD = 7900  # PostgreSQL's limit is 8,000 bytes
OUTBOX = 1024  # events waiting to be sent; the oldest are dropped beyond it
RETRY_SECONDS = 1.0


def encode(origin: str, run_id: str, event: str, data: dict[str, Any]) -> str:
    """The NOTIFY payload of one event (cut down to its node or status when too big)."""
    body = json.dumps({"o": origin, "r": run_id, "e": event, "d": data}, default=str)
    if len(body.encode()) <= MAX_PAYLOAD:
        return body
    small = {k: data[k] for k in ("node", "status", "outcome") if isinstance(data.get(k), str)}
    return json.dumps({"o": origin, "r": run_id, "e": event, "d": {**small, "truncated": True}})


class Relay:
    """Sends this replica's run events to the others, and theirs to this replica's hub."""

    def __init__(self, database_url: str, origin: str, hub: EventHub) -> None:
        self.url = database_url
        self.origin = origin
        self.hub = hub
        self._outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX)
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()  # set while the LISTEN is in place

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep("listening", self._listen), name="relay-listen"),
            asyncio.create_task(self._keep("sending", self._send), name="relay-send"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def forward(self, run_id: str, event: str, data: dict[str, Any]) -> None:
        """Queue one of this replica's events for the others (never blocks the run)."""
        if self._outbox.full():
            self._outbox.get_nowait()
        self._outbox.put_nowait(encode(self.origin, run_id, event, data))

    async def _keep(
        self, what: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]
    ) -> None:
        """Run `work` on a connection of its own, reconnecting after failures (logged once)."""
        failing = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    if failing:
                        log.info("event relay: %s again", what)
                        failing = False
                    await work(conn)
            except psycopg.Error as exc:
                if not failing:
                    log.warning("event relay: %s failed (%s); retrying", what, type(exc).__name__)
                failing = True
            await asyncio.sleep(RETRY_SECONDS)

    async def _send(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            payload = await self._outbox.get()
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(f"LISTEN {CHANNEL}")
        self.listening.set()
        try:
            async for note in conn.notifies():
                self._deliver(note.payload)
        finally:
            self.listening.clear()

    def _deliver(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message["o"] == self.origin:
                return  # this replica's own, already delivered here
            self.hub.deliver(str(message["r"]), str(message["e"]), dict(message["d"]))
        except (ValueError, KeyError, TypeError):
            log.warning("event relay: unreadable payload ignored")
