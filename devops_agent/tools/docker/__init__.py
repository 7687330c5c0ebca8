"""The Docker backend, in parts: targets (what a name means), inspect (container state),
resources (CPU and memory), clone (scaling), reconcile (did an interrupted step happen)."""

from devops_agent.tools.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
