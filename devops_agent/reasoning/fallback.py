"""The fallback: when the LLM step fails, the rules reasoner answers that step instead.

Any failure counts (timeout, HTTP 4xx/5xx, rate limit, malformed or rejected output, an open
circuit breaker, or a bug): the rules reasoner is a full reasoner, so a run never depends on the
model being up. With FALLBACK_ENABLED=false the error propagates and the run fails visibly.
The primary's record keeps its error; the fallback's record gets `fallback: True`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TypeVar

from devops_agent.reasoning.base import Investigation, Reasoner
from devops_agent.reasoning.records import complete
from devops_agent.state import Diagnosis, Plan

log = logging.getLogger(__name__)
T = TypeVar("T")


class FallbackReasoner:
    """`primary` for each step, `fallback` for the steps where it fails (when enabled)."""

    def __init__(self, primary: Reasoner, fallback: Reasoner, enabled: bool = True) -> None:
        self.primary = primary
        self.fallback = fallback
        self.enabled = enabled
        self.name = primary.name

    async def diagnose(self, case: Investigation) -> Diagnosis:
        return await self._run(
            case,
            "diagnose",
            lambda: self.primary.diagnose(case),
            lambda: self.fallback.diagnose(case),
        )

    async def plan(self, case: Investigation, diagnosis: Diagnosis) -> Plan:
        return await self._run(
            case,
            "plan",
            lambda: self.primary.plan(case, diagnosis),
            lambda: self.fallback.plan(case, diagnosis),
        )

    async def _run(
        self,
        case: Investigation,
        step: str,
        primary: Callable[[], Awaitable[T]],
        fallback: Callable[[], Awaitable[T]],
    ) -> T:
        before = len(case.calls)
        try:
            return await primary()
        except Exception as exc:
            if len(case.calls) == before:  # a primary that keeps no records of its own
                case.calls.append(
                    complete({"reasoner": self.primary.name, "step": step}, error=str(exc))
                )
            if not self.enabled:
                raise
            log.warning(
                "%s %s failed (%s): the %s reasoner answers",
                self.primary.name,
                step,
                exc,
                self.fallback.name,
            )
        started = perf_counter()
        mark = len(case.calls)
        result = await fallback()
        latency = round((perf_counter() - started) * 1000, 3)
        if len(case.calls) == mark:  # a fallback that keeps no records of its own
            case.calls.append({"reasoner": self.fallback.name, "step": step})
        record = complete(case.calls[-1], fallback=True)
        record["latency_ms"] = record["latency_ms"] or latency
        return result
