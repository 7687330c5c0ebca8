"""What the nodes need, built once from the settings and handed to the graph."""

from __future__ import annotations

from dataclasses import dataclass

from devops_agent.config import Settings, get_settings
from devops_agent.memory.store import Store
from devops_agent.notify import Notifier
from devops_agent.reasoning.base import Reasoner
from devops_agent.reasoning.rules import RulesReasoner
from devops_agent.tools.docker import DockerBackend
from devops_agent.tools.fake import FakeBackend
from devops_agent.tools.registry import Backend, Registry


@dataclass
class AgentContext:
    settings: Settings
    registry: Registry
    reasoner: Reasoner
    store: Store
    notifier: Notifier
    validate_interval: float = 1.0

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, backend: Backend | None = None
    ) -> AgentContext:
        """Build every dependency from the settings. Nothing connects until first used."""
        settings = settings or get_settings()
        if backend is None:
            backend = (
                FakeBackend()
                if settings.infra_backend == "fake"
                else DockerBackend(
                    docker_host=settings.docker_host,
                    max_replicas=settings.max_replicas,
                    command_allowlist=settings.command_allowlist,
                )
            )
        return cls(
            settings=settings,
            registry=Registry(backend),
            reasoner=RulesReasoner(),
            store=Store.from_url(settings.resolved_database_url),
            notifier=Notifier(settings.notify_webhook_url),
        )
