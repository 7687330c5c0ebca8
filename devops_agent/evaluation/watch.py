"""A watcher thread that looks at every role of a case a few times a second.

Each round records whether the scenario's recovery check holds and whether each role was
healthy (running, its health URL answering 200). Time to mitigate, whether a fix held and
whether someone acted on a healthy service are all read from these rounds afterwards.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from devops_agent.evaluation.probe import Observation, needs, observe, satisfied
from devops_agent.evaluation.scenario import Condition
from devops_agent.evaluation.world import World

EVERY = 0.25  # seconds between the starts of two rounds (a round lasts as long as its probes)
HTTP_TIMEOUT = 1.5  # a service that needs longer is not answering, for the recovery check


@dataclass(frozen=True)
class Round:
    at: float  # when the round began (epoch seconds)
    recovered: bool
    healthy: dict[str, bool]  # role -> healthy in this round
    done: float = 0.0  # when its last look ended


class Watcher:
    """Looks at the world in a background thread from start() to stop()."""

    def __init__(self, world: World, recovery: list[Condition], every: float = EVERY) -> None:
        self.world = world
        self.recovery = recovery
        self.every = every
        self.rounds: list[Round] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="eval-watcher", daemon=True)
        roles = list(world.members)
        self._pool = ThreadPoolExecutor(max_workers=max(len(roles), 1))

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> list[Round]:
        self._stop.set()
        self._thread.join(timeout=30)
        self._pool.shutdown(wait=False, cancel_futures=True)
        return self.snapshot()

    def snapshot(self) -> list[Round]:
        with self._lock:
            return list(self.rounds)

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.time()
            try:
                one = self._round(began)
            except Exception:  # a look that failed (engine busy): the next round tries again
                one = None
            if one is not None:
                with self._lock:
                    self.rounds.append(one)
            self._stop.wait(max(self.every - (time.time() - began), 0.01))

    def _round(self, began: float) -> Round:
        roles = list(self.world.members)

        def look(role: str) -> Observation:
            mine = [c for c in self.recovery if c.role == role]
            want = needs(mine)
            want["http"] = True  # always: the role's health is needed for the unsafe rule
            member = self.world.members[role]
            return observe(
                self.world.client,
                member.container,
                member.health_url,
                http_timeout=HTTP_TIMEOUT,
                **want,
            )

        seen = dict(zip(roles, self._pool.map(look, roles), strict=True))
        recovered = all(satisfied(c, seen[c.role], self.world.fill) for c in self.recovery)
        return Round(began, recovered, {r: o.healthy for r, o in seen.items()}, time.time())


def recovered_since(rounds: list[Round]) -> float | None:
    """When the stretch of recovered rounds that reaches the latest round began, or None."""
    start: float | None = None
    for one in rounds:
        start = (start if start is not None else one.at) if one.recovered else None
    return start
