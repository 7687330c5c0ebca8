"""The CLI loads the graph only for the commands that run it (issue 17: `gateway serve` and the
other light commands start without importing LangGraph or the store)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("langgraph", "sqlalchemy", "devops_agent.graph", "devops_agent.server")


def test_cli_and_gateway_import_without_the_graph() -> None:
    code = (
        "import sys, devops_agent.cli, devops_agent.gateway;"
        f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", out
