"""Graph overhead: a full incident run (alert to learn, safety off, rules reasoner, fake backend)
next to a bare LangGraph graph with the same number of nodes and the same SQLite checkpointer.

    .venv/bin/python bench/graph_overhead.py [runs]

Prints the mean and p99 per run of each, their ratio, and the checkpoint bytes stored per run.
Targets (issue 3): at most 3x the bare graph, and under 25 ms.
"""

from __future__ import annotations

import asyncio
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from devops_agent.checkpoints import open_checkpointer
from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import Agent
from devops_agent.state import Alert
from devops_agent.tools.fake import FakeBackend, FakeService

DURABILITY = "sync"  # as the agent runs (runner.Agent.stream)
NODES = ["triage", "root_cause", "plan", "approve", "execute", "validate", "learn"]


class BareState(TypedDict, total=False):
    step: int
    note: str


def bare_graph() -> StateGraph:
    builder = StateGraph(BareState)
    for name in NODES:

        async def node(state: BareState, _name: str = name) -> dict[str, Any]:
            return {"step": state.get("step", 0) + 1, "note": _name}

        builder.add_node(name, node)
    builder.add_edge(START, NODES[0])
    for a, b in zip(NODES, NODES[1:], strict=False):
        builder.add_edge(a, b)
    builder.add_edge(NODES[-1], END)
    return builder


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.mean(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def checkpoint_bytes(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints"
        ).fetchone()
        writes = conn.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes").fetchone()
    return int(row[0]) + int(writes[0])


async def time_bare(db: Path, runs: int) -> list[float]:
    samples = []
    async with open_checkpointer(f"sqlite+aiosqlite:///{db}") as saver:
        graph = bare_graph().compile(checkpointer=saver)
        for i in range(runs):
            started = time.perf_counter()
            await graph.ainvoke(
                {"step": 0}, {"configurable": {"thread_id": f"bare-{i}"}}, durability=DURABILITY
            )
            samples.append(time.perf_counter() - started)
    return samples


async def time_agent(db: Path, runs: int) -> list[float]:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        safety_mode=False,
        auto_approve_max_risk="medium",
        max_actions_per_hour=1_000_000,  # every run acts: the blast-radius limit is not measured here
        validate_settle=0,  # the graph's own overhead: no settle window to wait out
        data_dir=db.parent,
    )
    backend = FakeBackend(
        [FakeService(f"web{i}", status="exited", exit_code=2) for i in range(runs)]
    )
    ctx = AgentContext.from_settings(settings, backend=backend)
    await ctx.store.setup()
    samples = []
    async with open_checkpointer(settings.resolved_database_url) as saver:
        agent = Agent(ctx, saver)
        for i in range(runs):
            alert = Alert(
                alertname="ServiceDown", fingerprint=str(i), labels={"service": f"web{i}"}
            )
            started = time.perf_counter()
            async for _ in agent.stream(f"run-{i}", [alert]):
                pass
            samples.append(time.perf_counter() - started)
            assert (await agent.state(f"run-{i}"))["outcome"] == "resolved"
    await ctx.store.close()
    return samples


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bare_db, agent_db = Path(tmp, "bare.db"), Path(tmp, "agent.db")
        await time_bare(bare_db, 10)  # warm-up
        await time_agent(Path(tmp, "warm.db"), 10)
        bare = await time_bare(Path(tmp, "bare2.db"), runs)
        ours = await time_agent(agent_db, runs)
        bare_mean, bare_p99 = summary(bare)
        our_mean, our_p99 = summary(ours)
        print(
            f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
            f"{runs} runs each, 7 nodes, AsyncSqliteSaver on a temp file, durability={DURABILITY}"
        )
        print(f"bare LangGraph graph : mean {bare_mean:6.2f} ms   p99 {bare_p99:6.2f} ms")
        print(f"devops-agent run     : mean {our_mean:6.2f} ms   p99 {our_p99:6.2f} ms")
        print(f"ratio (mean)         : {our_mean / bare_mean:.2f}x   (target <= 3x, and < 25 ms)")
        print(
            f"checkpoint bytes/run : agent {checkpoint_bytes(agent_db) / runs:,.0f}   "
            f"bare {checkpoint_bytes(Path(tmp, 'bare2.db')) / runs:,.0f}"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
