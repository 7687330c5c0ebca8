"""Which reasoner a configuration gets: the rules alone, or the LLM with the rules behind it."""

from __future__ import annotations

import logging

from devops_agent.config import Settings
from devops_agent.reasoning.base import Reasoner
from devops_agent.reasoning.fallback import FallbackReasoner
from devops_agent.reasoning.rules import RulesReasoner
from devops_agent.tools.registry import Registry
from devops_agent.workflows import Catalog

log = logging.getLogger(__name__)


def build_reasoner(
    settings: Settings, registry: Registry, catalog: Catalog | None = None
) -> Reasoner:
    """RulesReasoner unless `settings.uses_llm()`; then the LLM, falling back to the rules."""
    if not settings.uses_llm():
        return RulesReasoner(catalog)
    if settings.openai_api_key is None and settings.openai_base_url is None:
        log.warning("REASONER=llm without OPENAI_API_KEY or OPENAI_BASE_URL: the rules will answer")
    # Imported here: langchain-openai is only loaded by configurations that use it.
    from devops_agent.reasoning.llm import LLMReasoner

    return FallbackReasoner(
        LLMReasoner.from_settings(settings, registry, catalog=catalog),
        RulesReasoner(catalog),
        enabled=settings.fallback_enabled,
    )
