"""The intent a backend call serves: which ledger step it is, what is intended and why.

The execute node makes it the current one (a context variable) while it runs a step; a backend
that hands operations to someone else (the AI Command Gateway) sends it along, and uses the
ledger key as the idempotency key, so that a call retried after a lost answer acts once.
Calls outside a step (the evidence gathering) have no intent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Intent:
    key: str  # the ledger key: run:attempt:step
    description: str  # what is intended, and why, in words
    context: dict[str, Any] = field(default_factory=dict)  # the incident: run, service, category


current: ContextVar[Intent | None] = ContextVar("devops_agent_intent", default=None)


def ledger_key(run_id: str, attempt: int, step: int) -> str:
    return f"{run_id}:{attempt}:{step}"


@contextmanager
def acting(intent: Intent) -> Iterator[Intent]:
    """Make `intent` the current one for the calls inside the block."""
    token = current.set(intent)
    try:
        yield intent
    finally:
        current.reset(token)
