"""Notifications to people: Slack-compatible JSON POSTed to NOTIFY_WEBHOOK_URL, never blocking a run."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from devops_agent.redact import redact_data

log = logging.getLogger(__name__)


class Notifier:
    """Sends in the background with bounded retries and backoff; a failing receiver only logs."""

    def __init__(self, url: str | None, attempts: int = 4, backoff: float = 0.5):
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, text: str, **fields: Any) -> None:
        if not self.url:
            return
        # An exit: evidence was masked where it was gathered, and is masked again here.
        task = asyncio.create_task(self._deliver(redact_data({"text": text, **fields})))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, payload: dict[str, Any]) -> None:
        assert self.url
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    response = await client.post(self.url, json=payload)
                if response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            log.warning("notification attempt %d failed: %s", attempt, problem)
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay *= 2

    async def drain(self) -> None:
        """Wait for notifications in flight (used at shutdown and by the CLI)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
