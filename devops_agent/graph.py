"""The incident graph: triage -> root_cause -> plan -> approve -> execute -> validate -> learn.

`build_graph(ctx)` returns the uncompiled StateGraph; callers compile it with their checkpointer.
`graph` is compiled without one for `langgraph.json` (LangGraph Studio / `langgraph dev`, which
brings its own persistence). Its context is built from the settings on first use, not at import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph import END, START, StateGraph

from devops_agent.context import AgentContext
from devops_agent.nodes.approve import (
    approve,
    await_approval,
    route_after_approve,
    route_after_decision,
)
from devops_agent.nodes.escalate import escalate
from devops_agent.nodes.execute import execute, route_after_execute
from devops_agent.nodes.learn import learn
from devops_agent.nodes.plan import plan, route_after_plan
from devops_agent.nodes.rollback import rollback
from devops_agent.nodes.root_cause import root_cause
from devops_agent.nodes.triage import route_after_triage, triage
from devops_agent.nodes.validate import route_after_validate, validate
from devops_agent.state import IncidentState

Node = Callable[[IncidentState, AgentContext], Awaitable[dict[str, Any]]]
NODES: dict[str, Node] = {
    "triage": triage,
    "root_cause": root_cause,
    "plan": plan,
    "approve": approve,
    "await_approval": await_approval,
    "execute": execute,
    "validate": validate,
    "rollback": rollback,
    "escalate": escalate,
    "learn": learn,
}


class LazyContext:
    """Builds the AgentContext from the settings the first time a node needs it.

    Reading the settings touches files (.env), so it happens in a worker thread.
    """

    def __init__(self) -> None:
        self._ctx: AgentContext | None = None

    async def get(self) -> AgentContext:
        if self._ctx is None:
            self._ctx = await asyncio.to_thread(AgentContext.from_settings)
        return self._ctx


def _bind(
    fn: Node, source: AgentContext | LazyContext
) -> Callable[[IncidentState], Awaitable[dict[str, Any]]]:
    async def node(state: IncidentState) -> dict[str, Any]:
        ctx = await source.get() if isinstance(source, LazyContext) else source
        return await fn(state, ctx)

    node.__name__ = fn.__name__
    return node


def build_graph(ctx: AgentContext | None = None) -> StateGraph:
    """The incident graph, with its nodes bound to `ctx` (or to the settings, lazily)."""
    source: AgentContext | LazyContext = ctx if ctx is not None else LazyContext()
    builder = StateGraph(IncidentState)
    for name, fn in NODES.items():
        builder.add_node(name, _bind(fn, source))  # type: ignore[call-overload]
    builder.add_edge(START, "triage")
    builder.add_conditional_edges("triage", route_after_triage, ["root_cause", "escalate", "learn"])
    builder.add_edge("root_cause", "plan")
    builder.add_conditional_edges("plan", route_after_plan, ["approve", "escalate", "learn"])
    builder.add_conditional_edges(
        "approve", route_after_approve, ["await_approval", "execute", "escalate"]
    )
    builder.add_conditional_edges("await_approval", route_after_decision, ["execute", "escalate"])
    builder.add_conditional_edges(
        "execute", route_after_execute, ["validate", "escalate", "await_approval", "learn"]
    )
    builder.add_conditional_edges(
        "validate", route_after_validate, ["learn", "root_cause", "rollback"]
    )
    builder.add_edge("rollback", "escalate")
    builder.add_edge("escalate", "learn")
    builder.add_edge("learn", END)
    return builder


graph = build_graph().compile()
