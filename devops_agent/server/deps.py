"""What the routes share: the objects built in the lifespan, reached through the request."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request

from devops_agent.config import Settings
from devops_agent.memory.run_repo import RunRepo
from devops_agent.monitoring import Monitor
from devops_agent.orchestration.events import EventHub
from devops_agent.orchestration.intake import Intake
from devops_agent.orchestration.manager import RunManager
from devops_agent.orchestration.metrics import Metrics
from devops_agent.runner import Agent
from devops_agent.sources.watcher import EngineWatcher


@dataclass
class Services:
    settings: Settings
    agent: Agent
    repo: RunRepo
    manager: RunManager
    intake: Intake
    monitor: Monitor
    hub: EventHub
    metrics: Metrics
    watcher: EngineWatcher | None = None


async def services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain function dependency in its thread pool, one
    thread hop per request (a fifth of the webhook's time under load)."""
    found: Services | None = getattr(request.app.state, "services", None)
    if found is None:
        raise HTTPException(503, "the service is starting")
    return found
