"""Fault-injection points, for tests only: stop or kill this process at a named place.

`DEVOPS_AGENT_FAULTS=after_begin_step=kill` SIGKILLs the process when execute reaches the
point between the ledger's begin and the backend call; `=stop` SIGSTOPs it there (a test
SIGCONTs it); `point=kill@2` acts on the second time the point is reached. Unset (always, in
production), `hit` does nothing. It is not a setting of the service: nothing documents it to
users, and nothing but the test suite sets it.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "DEVOPS_AGENT_FAULTS"
_hits: Counter[str] = Counter()


def hit(point: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    _hits[point] += 1
    for item in spec.split(","):
        name, _, action = item.strip().partition("=")
        action, _, nth = action.partition("@")
        if name != point or _hits[point] != int(nth or 1):
            continue
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
