"""Checkpoint writes under the run's lease: a replica that may have lost the run writes none.

Between nodes, a replica paused past its lease would otherwise write checkpoints of a thread
another replica now drives, forking its history. The saver's writes check the current lease
(devops_agent.fencing) first; without one (the CLI, Studio) nothing changes.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from devops_agent import fencing


def _checked(write: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(write)
    async def fenced(*args: Any, **kwargs: Any) -> Any:
        fencing.check()
        return await write(*args, **kwargs)

    return fenced


def fence_writes(saver: BaseCheckpointSaver) -> BaseCheckpointSaver:
    """The same saver, whose `aput` and `aput_writes` check the lease first."""
    if not getattr(saver, "_devops_agent_fenced", False):
        saver.aput = _checked(saver.aput)  # type: ignore[method-assign,assignment]
        saver.aput_writes = _checked(saver.aput_writes)  # type: ignore[method-assign,assignment]
        saver._devops_agent_fenced = True  # type: ignore[attr-defined]
    return saver
