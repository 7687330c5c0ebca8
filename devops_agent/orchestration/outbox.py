"""The deliverer: sends the outbox's due notices to NOTIFY_WEBHOOK_URL and to Slack (when
SLACK_BOT_TOKEN and SLACK_CHANNEL are set), at least once, each under its delivery id.

Each replica runs one; a notice is held by one of them at a time (a lease on its row), tried
with a backoff that doubles up to five minutes, and kept until a receiver answers 2xx. An
approval request whose run no longer waits on it (decided, superseded) is dropped, not sent.
"""

from __future__ import annotations

import asyncio
import logging

from devops_agent import faults
from devops_agent.memory.outbox import Notice, Outbox
from devops_agent.memory.run_repo import RunRepo
from devops_agent.memory.runs import AWAITING
from devops_agent.notify import post
from devops_agent.orchestration.slack import SlackChannel

log = logging.getLogger(__name__)
EVERY = 0.5  # seconds between two looks at the outbox
LEASE = 30.0  # seconds a deliverer holds the notices it took


class Deliverer:
    def __init__(
        self,
        outbox: Outbox,
        repo: RunRepo | None,
        url: str | None,
        owner: str,
        slack: SlackChannel | None = None,
    ):
        self.outbox = outbox
        self.repo = repo
        self.url = url
        self.owner = owner
        self.slack = slack

    @property
    def enabled(self) -> bool:
        return bool(self.url) or self.slack is not None

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(EVERY)
            if not self.enabled:
                continue
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # storage away: the notices wait in the outbox
                log.warning("could not deliver notifications: %s", type(exc).__name__)

    async def deliver_due(self) -> int:
        """Try every notice that is due; how many were delivered."""
        if not self.enabled:
            return 0
        delivered = 0
        for notice in await self.outbox.due(self.owner, LEASE):
            problem = None if await self._stale(notice) else await self._send(notice)
            await self.outbox.tried(notice, self.owner, problem)
            if problem:
                log.warning("notification %s not delivered: %s", notice.delivery_id, problem)
            else:
                delivered += 1
        return delivered

    async def _send(self, notice: Notice) -> str | None:
        """Every channel, each told again until all took it (a repeat carries the same id;
        Slack updates the message it posted)."""
        faults.hit("before_deliver")
        problems = []
        if self.url:
            problems.append(await post(self.url, notice.payload))
        if self.slack is not None:
            slack = await self.slack.deliver(notice.payload)
            problems.append(f"slack: {slack}" if slack else None)
        faults.hit("after_deliver")
        return "; ".join(p for p in problems if p) or None

    async def _stale(self, notice: Notice) -> bool:
        """An approval request the run no longer waits on."""
        if notice.kind != "approval_request" or self.repo is None:
            return False
        row = await self.repo.get(notice.run_id)
        asked = (row.approval_request or {}).get("request_id") if row else None
        return row is None or row.status != AWAITING or asked != notice.payload.get("request_id")
