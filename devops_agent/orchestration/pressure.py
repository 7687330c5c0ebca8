"""Back-pressure: while webhook requests are in flight, intake comes first and the workers but
one stand back; the first worker still takes new work every HOLD_LIMIT seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

HOLD_LIMIT = 1.0  # while alerts pour in, the first worker still takes new work this often


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
