"""The Prometheus client against the real binary, and root_cause's Prometheus evidence: from a
live Prometheus, and from one that is down (the run goes on with the other evidence)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devops_agent import stack
from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import open_agent
from devops_agent.state import Alert
from devops_agent.tools.prometheus import PrometheusClient, service_evidence
from tests.stack.conftest import wait
from tests.stack.example import METRICS_PATH, example_service, install_metrics
from tests.support.containers import Lab, Started, free_port

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.StackSpec]:
    """Prometheus and Alertmanager alone (their webhook goes to a closed port)."""
    spec = stack.StackSpec(
        directory=tmp_path_factory.mktemp("stack"),
        agent_url=f"http://127.0.0.1:{free_port()}",
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
    )
    stack.up(spec)
    try:
        yield spec
    finally:
        assert stack.down(spec.directory) == ["alertmanager", "prometheus"]
        assert stack.running(spec.directory) == {}


async def test_client_queries_and_typed_failures(prometheus: stack.StackSpec) -> None:
    client = PrometheusClient(prometheus.prometheus_url)
    now = time.time()
    instant = await client.query("vector(42)")
    assert instant.ok and instant.result_type == "vector" and instant.first() == 42.0
    scalar = await client.query("scalar(vector(7))")
    assert scalar.ok and scalar.first() == 7.0
    series = await client.query_range("vector(1)", now - 60, now, 15)
    assert series.ok and series.result_type == "matrix" and len(series.result[0]["values"]) >= 4

    bad = await client.query("sum(")
    assert not bad.ok and bad.error == "invalid" and "parse error" in bad.message
    down = await PrometheusClient(f"http://127.0.0.1:{free_port()}").query("up")
    assert not down.ok and down.error == "unreachable"


async def _diagnose(tmp_path: Path, prometheus_url: str, service: str) -> dict[str, Any]:
    """Run the graph in this process (safety on: it stops before acting); its state."""
    settings = load_settings(
        database_url="memory://",
        data_dir=tmp_path,
        reasoner="rules",
        safety_mode=True,
        prometheus_url=prometheus_url,
    )
    async with open_agent(AgentContext.from_settings(settings)) as agent:
        alert = Alert(alertname="ServiceDown", fingerprint="fp-1", labels={"service": service})
        async for _ in agent.stream("run-1", alerts=[alert]):
            pass
        state: dict[str, Any] = await agent.state("run-1")
        return state


def _prometheus_evidence(state: dict[str, Any]) -> dict[str, Any]:
    [found] = [e for e in state["evidence"] if e["source"] == "prometheus"]
    return found


async def test_prometheus_down_is_failed_evidence_and_the_run_goes_on(
    lab: Lab, tmp_path: Path
) -> None:
    app = lab.crashed()
    closed = f"http://127.0.0.1:{free_port()}"
    state = await _diagnose(tmp_path, closed, app.name)
    evidence = _prometheus_evidence(state)
    assert evidence["ok"] is False and evidence["data"]["error"] == "unreachable"
    assert closed in evidence["summary"]
    assert state["diagnosis"]["category"] == "crash"  # from the container's own evidence
    assert state["plan"]["steps"][0]["operation"] == "restart_service"


async def test_live_prometheus_adds_what_it_scraped(
    lab: Lab, tmp_path: Path, prometheus: stack.StackSpec
) -> None:
    app, address = example_service(lab, "cart")
    stack.add_target(prometheus.directory, app.name, address, METRICS_PATH)
    client = PrometheusClient(prometheus.prometheus_url)

    async def memory_seen() -> bool:
        found = await client.query(f'process_resident_memory_bytes{{service="{app.name}"}}')
        return found.ok and bool(found.values())

    deadline = time.monotonic() + 60
    while not await memory_seen():
        assert time.monotonic() < deadline, "Prometheus never scraped the example"
        time.sleep(0.5)
    healthy = await service_evidence(prometheus.prometheus_url, app.name)
    assert healthy.ok and healthy.data["up"] == 1.0
    assert healthy.data["memory_trend"] is None or healthy.data["memory_trend"]["last_bytes"] > 0

    lab.exec(app, "touch", "/run/crash")
    wait(lambda: lab.container(app).status == "exited", f"{app.name} to exit")
    deadline = time.monotonic() + 60
    while (await client.query(f'up{{service="{app.name}"}}')).first() != 0.0:
        assert time.monotonic() < deadline, "Prometheus never saw the crash"
        time.sleep(0.5)
    state = await _diagnose(tmp_path, prometheus.prometheus_url, app.name)
    evidence = _prometheus_evidence(state)
    assert evidence["ok"] is True and evidence["data"]["up"] == 0.0
    assert "scrape DOWN" in evidence["summary"]
    assert state["diagnosis"]["category"] == "crash"


async def _scraped(prometheus: stack.StackSpec, lab: Lab, app: Started, expr: str) -> None:
    """Have Prometheus scrape `app` and wait until `expr` (about it) holds."""
    stack.add_target(prometheus.directory, app.name, install_metrics(lab, app), METRICS_PATH)
    client = PrometheusClient(prometheus.prometheus_url)
    deadline = time.monotonic() + 60
    while not (await client.query(expr)).values():
        assert time.monotonic() < deadline, f"Prometheus never saw {expr}"
        time.sleep(0.5)


def _health_probe(state: dict[str, Any]) -> dict[str, Any]:
    [health] = [e for e in state["evidence"] if e["source"] == "health_check"]
    probe: dict[str, Any] = health["data"]["probe"]
    return probe


async def test_prometheus_confirms_a_hang_after_the_quick_probe(
    lab: Lab, tmp_path: Path, prometheus: stack.StackSpec
) -> None:
    app = lab.hung()
    await _scraped(prometheus, lab, app, f'health_check_up{{service="{app.name}"}} == 0')
    state = await _diagnose(tmp_path, prometheus.prometheus_url, app.name)
    assert _prometheus_evidence(state)["data"]["health_up"] == 0.0
    probe = _health_probe(state)
    assert "no answer in 0.5s" in probe["summary"] and "Prometheus" in probe["confirmed_by"]
    assert state["diagnosis"]["category"] == "hang"
    assert state["plan"]["steps"][0]["operation"] == "restart_service"


async def test_a_slow_service_failing_in_prometheus_too_is_not_called_hung(
    lab: Lab, tmp_path: Path, prometheus: stack.StackSpec
) -> None:
    app = lab.overloaded()  # health answers 200 in ~1.5 s: Prometheus' 1 s check fails as well
    await _scraped(prometheus, lab, app, f'health_check_up{{service="{app.name}"}} == 0')
    state = await _diagnose(tmp_path, prometheus.prometheus_url, app.name)
    probe = _health_probe(state)
    assert "may only be slow" in probe["quick_probe"] and probe["status"] == 200
    assert state["diagnosis"]["category"] == "overload"
