"""The incident graph: triage -> root_cause -> plan -> approve -> execute -> validate -> learn.

`build_graph(ctx)` returns the uncompiled StateGraph; callers compile it with their checkpointer.
`graph` is compiled without one for `langgraph.json` (LangGraph Studio / `langgraph dev`, which
brings its own persistence). Its context is built from the settings on first use, not at import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from langgraph.graph import END, START, StateGraph

from devops_agent import routing, telemetry
from devops_agent.context import AgentContext
from devops_agent.nodes.approve import approve, await_approval
from devops_agent.nodes.escalate import escalate
from devops_agent.nodes.execute import execute
from devops_agent.nodes.learn import learn
from devops_agent.nodes.plan import plan
from devops_agent.nodes.rollback import rollback
from devops_agent.nodes.root_cause import root_cause
from devops_agent.nodes.settle import settle
from devops_agent.nodes.triage import triage
from devops_agent.nodes.validate import validate
from devops_agent.state import IncidentState

Node = Callable[[IncidentState, AgentContext], Awaitable[IncidentState]]
NODES: dict[str, Node] = {
    "triage": triage,
    "root_cause": root_cause,
    "plan": plan,
    "approve": approve,
    "await_approval": await_approval,
    "execute": execute,
    "validate": validate,
    "settle": settle,
    "rollback": rollback,
    "escalate": escalate,
    "learn": learn,
}


# Where each node goes next: by a routing function (devops_agent/routing.py), or always.
CONDITIONAL: dict[str, Callable[[IncidentState], str]] = {
    "triage": routing.after_triage,
    "plan": routing.after_plan,
    "approve": routing.after_approve,
    "await_approval": routing.after_decision,
    "execute": routing.after_execute,
    "validate": routing.after_validate,
    "settle": routing.after_settle,
}
FIXED = {"root_cause": "plan", "rollback": "escalate", "escalate": "learn", "learn": END}


class LazyContext:
    """Builds the AgentContext from the settings the first time a node needs it.

    Reading the settings touches files (.env), so it happens in a worker thread.
    """

    def __init__(self) -> None:
        self._ctx: AgentContext | None = None

    async def get(self) -> AgentContext:
        if self._ctx is None:
            self._ctx = await asyncio.to_thread(AgentContext.from_settings)
            self._ctx.decisions_from = "studio"
        return self._ctx


def _bind(
    fn: Node, source: AgentContext | LazyContext
) -> Callable[[IncidentState], Awaitable[IncidentState]]:
    async def node(state: IncidentState) -> IncidentState:
        ctx = await source.get() if isinstance(source, LazyContext) else source
        with telemetry.span(f"node {fn.__name__}", node=fn.__name__) as current:
            update = await fn(state, ctx)
            telemetry.annotate(current, telemetry.run_attributes({**state, **(update or {})}))
            return update

    node.__name__ = fn.__name__
    return node


def build_graph(ctx: AgentContext | None = None) -> StateGraph:
    """The incident graph, with its nodes bound to `ctx` (or to the settings, lazily)."""
    source: AgentContext | LazyContext = ctx if ctx is not None else LazyContext()
    builder = StateGraph(IncidentState)
    for name, fn in NODES.items():
        builder.add_node(name, _bind(fn, source))  # type: ignore[call-overload]
    builder.add_edge(START, "triage")
    for node, route in CONDITIONAL.items():
        builder.add_conditional_edges(node, route, routing.targets(route))
    for node, after in FIXED.items():
        builder.add_edge(node, after)
    return builder


graph = build_graph().compile()
