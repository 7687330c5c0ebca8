"""Back-pressure: while webhook requests are in flight, intake comes first and the workers but
one stand back; the first worker still takes new work every HOLD_LIMIT seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

HOLD_LIMIT = 1.0  # while alerts pour in, the first worker still takes new work this often
# How long no request must be in flight before the workers take new work. A closed-loop client
# (Alertmanager retrying, a load generator) sends its next request a moment after each answer:
# without this, every group commit answered all the requests at once, and a run step went in
# the gap before the next ones arrived. A few milliseconds, not more: under a trickle (one
# alert every 100 ms) the workers still have nearly all the time.
CALM_AFTER = 0.005


class Pressure:
    """Whether webhook requests are in flight. While any is (or one ended less than CALM_AFTER
    ago), the workers wait before they take new work, so the 202s come first; soon after none
    is, they all run again. Never a long quiet time after each request: under a steady trickle
    (one alert every 100 ms) the workers would then stand back for good. So that a flood delays
    runs but never stops them, the first worker waits at most HOLD_LIMIT for a calm moment."""

    def __init__(self, calm_after: float = CALM_AFTER) -> None:
        self.inflight = 0
        self.calm_after = calm_after
        self._calm = asyncio.Event()
        self._calm.set()
        self._settling: asyncio.TimerHandle | None = None

    @contextmanager
    def request(self) -> Iterator[None]:
        self.inflight += 1
        self._calm.clear()
        if self._settling is not None:
            self._settling.cancel()
            self._settling = None
        try:
            yield
        finally:
            self.inflight -= 1
            if not self.inflight:
                self._settle_soon()

    def _settle_soon(self) -> None:
        if self.calm_after <= 0:
            self._calm.set()
            return
        self._settling = asyncio.get_running_loop().call_later(self.calm_after, self._settle)

    def _settle(self) -> None:
        self._settling = None
        if not self.inflight:
            self._calm.set()

    def busy(self) -> bool:
        return self.inflight > 0 or not self._calm.is_set()

    async def calm(self, limit: float | None = None) -> bool:
        """Wait until no request has been in flight for CALM_AFTER (True), or `limit` seconds at
        most (False)."""
        try:
            async with asyncio.timeout(limit):
                while not self._calm.is_set():  # a request may have begun before this waiter woke
                    await self._calm.wait()
        except TimeoutError:
            return False
        return True
