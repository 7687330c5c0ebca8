"""DevOps AI Agent: autonomous remediation of Alertmanager alerts as a checkpointed LangGraph graph."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("devops-ai-agent")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"
