"""What the nodes need, built once from the settings and handed to the graph."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from devops_agent.config import Settings, get_settings
from devops_agent.dburl import DatabaseUrl
from devops_agent.memory.audit import AuditLog, load_or_create_key
from devops_agent.memory.store import Store
from devops_agent.policy import PolicyDocument, load_policy
from devops_agent.reasoning.base import Reasoner
from devops_agent.reasoning.select import build_reasoner
from devops_agent.tools.registry import Backend, Registry
from devops_agent.tools.select import build_backend
from devops_agent.workflows import load_catalog


@dataclass
class AgentContext:
    settings: Settings
    registry: Registry
    reasoner: Reasoner
    store: Store
    audit: AuditLog
    policy: PolicyDocument
    validate_interval: float = 1.0
    # Where people's decisions come from when not through the service: "studio" (langgraph dev),
    # whose decisions are recorded as `studio:<name>` (a development tool, not a login).
    decisions_from: str = ""

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, backend: Backend | None = None
    ) -> AgentContext:
        """Build every dependency from the settings. Nothing connects until first used."""
        settings = settings or get_settings()
        backend = backend or build_backend(settings)
        store = Store.from_url(settings.resolved_database_url)
        key = settings.audit_key.get_secret_value() if settings.audit_key else None
        if key is None and DatabaseUrl(settings.resolved_database_url).kind == "memory":
            key = secrets.token_hex(32)  # nothing outlives the process, so neither does the key
        registry = Registry(
            backend, defaults={"health_check": {"probe_timeout": settings.probe_timeout}}
        )
        return cls(
            settings=settings,
            registry=registry,
            reasoner=build_reasoner(settings, registry, load_catalog(settings.workflows_dir)),
            store=store,
            audit=AuditLog(store, load_or_create_key(key, settings.data_dir)),
            policy=load_policy(settings.policy_file),
        )
