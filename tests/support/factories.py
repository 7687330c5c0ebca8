"""One home for the objects the tests build again and again: contexts, settings, alerts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devops_agent.config import Settings, load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import Agent, is_settle
from devops_agent.state import Alert
from devops_agent.tools.fake import FakeBackend, FakeService
from devops_agent.tools.registry import Backend

VALIDATE_INTERVAL = 0.05  # seconds between validate's probes: the fake backend answers at once


def sqlite_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings on a SQLite file (and DATA_DIR) of the test's own, validation kept short."""
    values = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/agent.db",
        "data_dir": tmp_path,
        "validate_timeout": 0.2,
        "validate_settle": 0,  # the window off: tests of the window set it
        **overrides,
    }
    return load_settings(**values)


def context(settings: Settings, backend: Backend) -> AgentContext:
    """An AgentContext on `backend`, probing quickly while it validates."""
    ctx = AgentContext.from_settings(settings, backend=backend)
    ctx.validate_interval = VALIDATE_INTERVAL
    return ctx


def fake_context(tmp_path: Path, *services: FakeService, **settings: Any) -> AgentContext:
    """An AgentContext on the fake backend with `services`, on the test's own SQLite file."""
    return context(sqlite_settings(tmp_path, **settings), FakeBackend(list(services)))


async def drive(
    agent: Agent, run_id: str, alerts: list[Alert] | None = None, resume: Any = None
) -> list[str]:
    """Stream a run as the run manager would: through its settle window's checks (sleeping
    until each is due), stopping where it waits for a person or ends. The nodes it ran."""
    nodes = [node async for node, _ in agent.stream(run_id, alerts, resume)]
    while (pending := await agent.pending_interrupt(run_id)) and is_settle(pending):
        wake = datetime.fromisoformat(str(pending["wake_at"]))
        await asyncio.sleep(max(0.0, (wake - datetime.now(UTC)).total_seconds()))
        nodes += [node async for node, _ in agent.stream(run_id, resume={"woke": True})]
    return nodes


def alert(
    service: str, fingerprint: str = "f1", status: str = "firing", **annotations: str
) -> Alert:
    return Alert(
        alertname="ServiceDown",
        fingerprint=fingerprint,
        status=status,  # type: ignore[arg-type]
        labels={"service": service},
        annotations=annotations,
    )
