"""A separate process that drives one run, so tests can stop it and continue in another.

    python -m tests.integration.drive DB_URL RUN_ID start SERVICE
    python -m tests.integration.drive DB_URL RUN_ID resume approve|reject
    python -m tests.integration.drive DB_URL RUN_ID resume-and-die approve   (SIGKILL right after
        the first mutating operation returned, before the ledger records its end)
    python -m tests.integration.drive DB_URL RUN_ID continue

Prints the nodes it ran and, last, the run's outcome (or `waiting`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.operations import OPERATIONS
from devops_agent.runner import open_agent
from devops_agent.state import Alert


async def main(db_url: str, run_id: str, mode: str, arg: str = "") -> None:
    settings = load_settings(database_url=db_url, validate_timeout=15, validate_settle=0)
    ctx = AgentContext.from_settings(settings)
    if mode == "resume-and-die":
        real_run = ctx.registry.run

        async def run_then_die(operation: str, params: Any) -> Any:
            result = await real_run(operation, params)
            if OPERATIONS[operation].mutating:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        ctx.registry.run = run_then_die  # type: ignore[method-assign]
    async with open_agent(ctx) as agent:
        if mode == "start":
            alert = Alert(alertname="ServiceDown", fingerprint="fp", labels={"service": arg})
            stream = agent.stream(run_id, alerts=[alert])
        elif mode in ("resume", "resume-and-die"):
            stream = agent.stream(run_id, resume={"decision": arg, "approver": "tester"})
        else:
            stream = agent.stream(run_id)
        async for node, _ in stream:
            print(node, flush=True)
        waiting = await agent.pending_approval(run_id)
        print("waiting" if waiting else (await agent.state(run_id)).get("outcome"), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
