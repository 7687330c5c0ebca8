"""The real monitoring stack for tests: Debian's prometheus and prometheus-alertmanager started by
devops_agent.stack on free loopback ports in a temp dir, with the demo intervals, next to a real
`devops-agent serve` subprocess (tests/server/conftest.py) that Alertmanager calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devops_agent import stack
from tests.server.conftest import TOKEN, WEBHOOK_TOKEN, Server
from tests.support.containers import free_port, wait_for

DEADLINE = 120.0  # generous: polling ends as soon as the condition holds


@dataclass
class Stack:
    spec: stack.StackSpec
    server: Server

    @property
    def directory(self) -> Path:
        return self.spec.directory

    def prometheus(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.spec.prometheus_url}/api/v1/query",
            params={"query": expr},
            timeout=10,
            trust_env=False,
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def alertmanager_alerts(self, service: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.spec.alertmanager_url}/api/v2/alerts",
            params={"filter": f'service="{service}"'},
            timeout=10,
            trust_env=False,
        )
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    def scrape(self, service: str, address: str, path: str) -> None:
        """Scrape `address` as `service`, and wait until Prometheus has seen it up."""
        stack.add_target(self.directory, service, address, path)
        wait(lambda: self.prometheus(f'up{{service="{service}"}} == 1'), f"{service} scraped up")


def wait(predicate: Callable[[], Any], what: str) -> Any:
    """Poll `predicate` (every 0.2 s, up to DEADLINE) until it returns something true."""
    return wait_for(predicate, DEADLINE, 0.2, what)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Prometheus + Alertmanager + the agent (with these settings), stopped after the test."""
    made: list[Stack] = []

    def make(**env: str) -> Stack:
        """`{alertmanager_url}` in a setting's value becomes the stack's Alertmanager."""
        index = len(made)
        prometheus_port, alertmanager_port = free_port(), free_port()
        urls = {"alertmanager_url": f"http://127.0.0.1:{alertmanager_port}"}
        server = Server(
            tmp_path / f"agent{index}",
            env={
                "PROMETHEUS_URL": f"http://127.0.0.1:{prometheus_port}",
                **{k: v.format(**urls) for k, v in env.items()},
            },
        )
        spec = stack.StackSpec(
            directory=tmp_path / f"stack{index}",
            agent_url=server.url,
            webhook_token=WEBHOOK_TOKEN,
            agent_api_token=TOKEN,
            prometheus_port=prometheus_port,
            alertmanager_port=alertmanager_port,
        )
        created = Stack(spec, server)
        made.append(created)
        server.start()
        stack.up(spec)
        return created

    yield make
    for created in made:
        stack.down(created.directory)
        created.server.stop()
