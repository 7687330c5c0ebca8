"""Which backend the settings ask for (INFRA_BACKEND, INFRA_TARGETS): the one place it is chosen."""

from __future__ import annotations

from pathlib import Path

from devops_agent.config import Settings
from devops_agent.tools.docker import DockerBackend
from devops_agent.tools.engines import EnginesBackend, tls_config
from devops_agent.tools.fake import FakeBackend
from devops_agent.tools.gateway import GatewayBackend
from devops_agent.tools.registry import Backend
from devops_agent.tools.swarm import SwarmBackend


def default_cert_path(settings: Settings) -> Path:
    """DOCKER_CERT_PATH, else Docker's own default (~/.docker)."""
    return settings.docker_cert_path or Path.home() / ".docker"


def build_backend(settings: Settings) -> Backend:
    """The backend of INFRA_BACKEND; nothing connects until first used."""
    if settings.infra_backend == "fake":
        return FakeBackend()
    if settings.infra_backend == "gateway":
        assert settings.gateway_url and settings.gateway_token  # load_settings requires them
        return GatewayBackend(
            settings.gateway_url,
            settings.gateway_token.get_secret_value(),
            timeout=settings.gateway_timeout,
        )
    kind = SwarmBackend if settings.infra_backend == "swarm" else DockerBackend
    if not settings.engines:
        return kind(
            docker_host=settings.docker_host,
            max_replicas=settings.max_replicas,
            command_allowlist=settings.command_allowlist,
        )
    certs = default_cert_path(settings)
    return EnginesBackend(
        {
            name: DockerBackend(
                docker_host=url,
                max_replicas=settings.max_replicas,
                command_allowlist=settings.command_allowlist,
                tls=tls_config(certs, name) if url.startswith("tcp://") else None,
            )
            for name, url in settings.engines.items()
        }
    )
