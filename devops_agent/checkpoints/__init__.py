"""The checkpointer factory."""

from devops_agent.checkpoints.factory import open_checkpointer

__all__ = ["open_checkpointer"]
