"""The core on PostgreSQL: one DATABASE_URL switches checkpoints, ledger and audit at once."""

from __future__ import annotations

from typing import Any

import psycopg

from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import open_agent
from devops_agent.state import Alert
from devops_agent.tools.fake import FakeBackend, FakeService
from tests.support.factories import context


def _ctx(url: str, web: FakeService, **settings: Any) -> AgentContext:
    s = load_settings(
        database_url=url, audit_key="k" * 32, validate_timeout=0.2, validate_settle=0, **settings
    )
    return context(s, FakeBackend([web]))


async def test_a_run_waits_on_postgres_and_resumes_in_a_new_agent(pg_url: str) -> None:
    web = FakeService("web", status="exited", exit_code=2)
    alert = Alert(alertname="ServiceDown", fingerprint="f", labels={"service": "web"})
    async with open_agent(_ctx(pg_url, web)) as agent:
        nodes = [n async for n, _ in agent.stream("run-pg", [alert])]
        assert nodes[-1] == "__interrupt__" and web.restarts == 0
    ctx = _ctx(pg_url, web)  # a new pool, a new saver: only the database carries the run
    async with open_agent(ctx) as agent:
        assert (await agent.pending_approval("run-pg")) is not None
        nodes = [
            n
            async for n, _ in agent.stream(
                "run-pg", resume={"decision": "approve", "approver": "pg"}
            )
        ]
        state = await agent.state("run-pg")
        ledger = await ctx.store.ledger("run-pg")
        audit = await ctx.audit.verify()
    assert (
        nodes == ["await_approval", "execute", "validate", "learn"]
        and state["outcome"] == "resolved"
    )
    assert web.restarts == 1 and [(e.operation, e.status) for e in ledger] == [
        ("restart_service", "succeeded")
    ]
    assert (
        audit.ok and audit.rows == 6
    )  # diagnosis, plan, approval_request, approval, action, outcome
    with psycopg.connect(pg_url) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert {"checkpoints", "checkpoint_writes", "action_ledger", "incidents", "audit_log"} <= tables
