"""The gateway watches its own engine and forwards the alerts to the agent (issue 17).

`devops-agent gateway serve` with GATEWAY_FORWARD_URL runs the agent's events watcher
(devops_agent/sources/) over this host's engine, for containers labelled devops-agent.watch=true,
and posts each alert, in the Alertmanager webhook shape, to the agent's webhook with the agent's
WEBHOOK_TOKEN as bearer. Payloads go in order; each is retried with backoff until the agent
answers 2xx, so nothing is lost while the agent restarts or is away (a payload it can never take,
400 or 422, is logged and dropped).

A die during an intent the gateway carries out on that target is the gateway's own doing, not a
fault: `Intents` tells the watcher which targets it is acting on (and, for VALIDATE_SETTLE after,
settling, so a `start` does not resolve the alerts while the agent watches its settle window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx

from devops_agent.alertmanager import WebhookPayload
from devops_agent.errors import short_error

log = logging.getLogger("devops_agent.gateway.forward")

ACTING_GRACE = 2.0  # seconds after an intent during which its target's events are still its own
DROPPED = (400, 413, 422)  # the agent will never take this payload


class Intents:
    """The targets (by identity, `container:<name>`, `compose:<project>/<service>`) this gateway
    is acting on, for the watcher's activity question."""

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self._acting: Counter[str] = Counter()
        self._ended: dict[str, float] = {}

    @contextlib.contextmanager
    def acting(self, key: str) -> Iterator[None]:
        self._acting[key] += 1
        try:
            yield
        finally:
            self._acting[key] -= 1
            if self._acting[key] <= 0:
                del self._acting[key]
            self._ended[key] = time.monotonic()

    async def activity(self, key: str) -> str | None:
        """`acting` while (and just after) an intent runs on it, `settling` for VALIDATE_SETTLE
        after, else None."""
        if self._acting.get(key):
            return "acting"
        ended = self._ended.get(key)
        if ended is None:
            return None
        since = time.monotonic() - ended
        if since < ACTING_GRACE:
            return "acting"
        if since < ACTING_GRACE + self.settle:
            return "settling"
        del self._ended[key]
        return None


class Forwarder:
    """Alerts to the agent's webhook: a queue, one sender, in order, until each is taken."""

    def __init__(self, url: str, token: str | None, *, max_backoff: float = 10.0) -> None:
        self.url = url
        self.max_backoff = max_backoff
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._queue: asyncio.Queue[WebhookPayload] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.dropped = 0
        self.last_error: str | None = None

    async def accept(self, payload: WebhookPayload) -> None:
        """The watcher's sink: queued, never refused."""
        self._queue.put_nowait(payload)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="gateway-forward")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pending": self._queue.qsize(),
            "delivered": self.delivered,
            "dropped": self.dropped,
            "last_error": self.last_error,
        }

    async def _loop(self) -> None:
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            while True:
                payload = await self._queue.get()
                await self._deliver(client, payload)

    async def _deliver(self, client: httpx.AsyncClient, payload: WebhookPayload) -> None:
        body = payload.model_dump(mode="json")
        backoff, away = 0.25, False
        while True:
            try:
                response = await client.post(self.url, json=body, headers=self._headers)
            except httpx.HTTPError as exc:
                problem = f"unreachable ({short_error(exc)})"
            else:
                if response.is_success:
                    self.delivered += 1
                    if away:
                        log.warning("forward: the agent at %s takes alerts again", self.url)
                    return
                if response.status_code in DROPPED:
                    self.dropped += 1
                    log.error(
                        "forward: the agent refused a payload (HTTP %d); dropped",
                        response.status_code,
                    )
                    return
                problem = f"HTTP {response.status_code}"
            self.last_error = problem
            if not away:
                log.warning("forward: agent %s %s; retrying with backoff", self.url, problem)
                away = True
            await asyncio.sleep(backoff)
            backoff = min(self.max_backoff, backoff * 2)
