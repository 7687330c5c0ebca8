"""Record the evidence root_cause gathers from real containers in each fault state.

    .venv/bin/python -m tests.record_evidence      (needs Docker; rewrites tests/unit/evidence/)

The unit tests of the rules reasoner replay these files, so they run without an engine.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import docker

from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import open_agent
from devops_agent.state import Alert
from tests.support.containers import Lab, ensure_test_image

OUT = Path(__file__).parent / "unit" / "evidence"


async def gather(service: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp}/a.db", safety_mode=True)
        alert = Alert(alertname="ServiceDown", fingerprint="fp", labels={"service": service})
        async with open_agent(AgentContext.from_settings(settings)) as agent:
            async for _ in agent.stream("r", [alert]):
                pass
            state = await agent.state("r")
    return {key: state.get(key) for key in ("alerts", "target", "evidence")}


def main() -> None:
    client = docker.from_env()
    ensure_test_image(client)
    OUT.mkdir(parents=True, exist_ok=True)
    with Lab(client) as lab:
        scenarios = {
            "crash": lambda: lab.crashed().name,
            "hang": lambda: lab.hung().name,
            "paused": lambda: lab.paused().name,
            "oom": lambda: lab.oom_killed().name,
            "config_error": lambda: lab.config_error().name,
            "dependency": lambda: lab.dependency_down().app.name,
            "cpu_saturation": lambda: (
                lab.cpu_saturated(compose_service="batch-svc").name and "batch-svc"
            ),
            "overload": lambda: lab.overloaded().name,
            "disk_full": lambda: lab.disk_full().name,
            "healthy": lambda: lab.healthy().name,
        }
        for name, make in scenarios.items():
            service = make()
            recorded = asyncio.run(gather(service))
            (OUT / f"{name}.json").write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
            print(f"recorded {name}: {len(recorded['evidence'] or [])} evidence items")


if __name__ == "__main__":
    main()
