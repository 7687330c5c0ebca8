"""A circuit breaker: after N failed steps within a window, stop asking the model for a while.

While open, steps go straight to the fallback (no request is sent). After the window has passed
since it opened, one trial step is let through: success closes it, failure opens it again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal


class CircuitBreaker:
    def __init__(
        self, failures: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = failures
        self.window = window
        self.clock = clock
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> Literal["closed", "open", "half_open"]:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self._opened_at >= self.window else "open"

    def allow(self) -> bool:
        """Whether a step may call the model now (one trial at a time when half open)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial:
            self._trial = True
            return True
        return False

    def record_success(self) -> None:
        self._failures.clear()
        self._opened_at = None
        self._trial = False

    def record_failure(self) -> None:
        now = self.clock()
        if self._trial or self._opened_at is not None:
            self._opened_at, self._trial = now, False
            return
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self.window:
            self._failures.popleft()
        if len(self._failures) >= self.threshold:
            self._opened_at = now
            self._failures.clear()

    def describe(self) -> str:
        return (
            f"circuit breaker {self.state}: {self.threshold} failed LLM steps within "
            f"{self.window:g}s (LLM_BREAKER_FAILURES / LLM_BREAKER_WINDOW)"
        )
