"""Fault-injection points, for tests only: stop or kill this process at a named place.

`DEVOPS_AGENT_FAULTS=after_begin_step=kill` SIGKILLs the process when execute reaches the
point between the ledger's begin and the backend call; `=stop` SIGSTOPs it there (a test
SIGCONTs it); `point=kill@2` acts on the second time the point is reached. `=pause` (at the
points `pause` is awaited) writes `<point>.reached` into DEVOPS_AGENT_FAULT_DIR and waits,
without blocking the event loop, until the test creates `<point>.go` there. Unset (always, in
production), `hit` and `pause` do nothing. It is not a setting of the service: nothing documents it to
users, and nothing but the test suite sets it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

ENV = "DEVOPS_AGENT_FAULTS"
DIR_ENV = "DEVOPS_AGENT_FAULT_DIR"
_hits: Counter[str] = Counter()


def _action(point: str) -> str | None:
    """What the test asked for at this point, this time (None: nothing)."""
    spec = os.environ.get(ENV)
    if not spec:
        return None
    _hits[point] += 1
    for item in spec.split(","):
        name, _, action = item.strip().partition("=")
        action, _, nth = action.partition("@")
        if name == point and _hits[point] == int(nth or 1):
            return action
    return None


def hit(point: str) -> None:
    action = _action(point)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)


async def pause(point: str) -> None:
    if _action(point) != "pause":
        return
    folder = Path(os.environ.get(DIR_ENV, "."))
    (folder / f"{point}.reached").write_text(str(os.getpid()))
    while not (folder / f"{point}.go").exists():  # noqa: ASYNC110 (a file from another process)
        await asyncio.sleep(0.05)
