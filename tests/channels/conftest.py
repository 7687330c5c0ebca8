"""The channels of issue 16 (traces, MCP, Slack) drive a real `devops-agent serve`."""

from tests.server.conftest import make_server, server  # noqa: F401  (fixtures)
