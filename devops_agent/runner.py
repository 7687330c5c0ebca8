"""Run incidents through the compiled graph: start, stream node updates, resume after approval."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from devops_agent.checkpoints import open_checkpointer
from devops_agent.checkpoints.fenced import fence_writes
from devops_agent.context import AgentContext
from devops_agent.graph import build_graph
from devops_agent.state import Alert


class Agent:
    """The graph compiled with a checkpointer, bound to one AgentContext."""

    def __init__(self, ctx: AgentContext, checkpointer: BaseCheckpointSaver):
        self.ctx = ctx
        self.checkpointer = fence_writes(checkpointer)
        self.graph: CompiledStateGraph = build_graph(ctx).compile(checkpointer=self.checkpointer)

    @staticmethod
    def config(run_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": run_id}}

    async def stream(
        self, run_id: str, alerts: list[Alert] | None = None, resume: dict[str, Any] | None = None
    ) -> AsyncIterator[tuple[str, Any]]:
        """Start (with alerts), resume (with a decision) or continue a run; yield (node, update)."""
        payload: Any
        if resume is not None:
            payload = Command(resume=resume)
        elif alerts is not None:
            payload = {"run_id": run_id, "alerts": [a.model_dump(mode="json") for a in alerts]}
        else:
            payload = None  # continue from the last checkpoint
        # durability="sync": a node's checkpoint is on disk before the next node starts, so a
        # crash never repeats a finished step's side effects from an older checkpoint, and the
        # nodes' own writes do not wait for SQLite's lock behind a checkpoint written meanwhile.
        async for chunk in self.graph.astream(
            payload, self.config(run_id), stream_mode="updates", durability="sync"
        ):
            for node, update in chunk.items():
                yield node, update

    async def state(self, run_id: str) -> dict[str, Any]:
        snapshot = await self.graph.aget_state(self.config(run_id))
        return dict(snapshot.values or {})

    async def pending_interrupt(self, run_id: str) -> dict[str, Any] | None:
        """What the run waits on: an approval request, or a settle window's next check (its
        `kind` is `settle`); None when it waits on nothing."""
        snapshot = await self.graph.aget_state(self.config(run_id))
        for task in snapshot.tasks:
            for intr in task.interrupts:
                return dict(intr.value)
        return None

    async def pending_approval(self, run_id: str) -> dict[str, Any] | None:
        """The approval request the run waits on, or None."""
        pending = await self.pending_interrupt(run_id)
        return None if pending is None or is_settle(pending) else pending


def is_settle(pending: dict[str, Any]) -> bool:
    """Whether an interrupt is a settle window's wait, not a question to a person."""
    return pending.get("kind") == "settle"


@asynccontextmanager
async def open_agent(ctx: AgentContext) -> AsyncIterator[Agent]:
    """An Agent on the settings' DATABASE_URL, with its stores ready; closes them on exit."""
    await ctx.store.setup()
    try:
        async with open_checkpointer(ctx.settings.resolved_database_url) as saver:
            yield Agent(ctx, saver)
    finally:
        await ctx.store.close()
