"""A hang is diagnosed after the quick probe only when Docker or Prometheus already saw the service
not answering and nothing shows it busy; otherwise root_cause waits the full PROBE_TIMEOUT."""

from __future__ import annotations

from typing import Any

from devops_agent.nodes.hang import confirmed_hang
from devops_agent.runner import open_agent
from devops_agent.tools.fake import FakeService
from devops_agent.tools.registry import OperationResult
from tests.unit.test_graph_fake import _alert, _ctx, _run


async def _diagnose(tmp_path, service: FakeService) -> dict[str, Any]:
    async with open_agent(_ctx(tmp_path, service)) as agent:  # safety on: stops before acting
        await _run(agent, "r1", [_alert(service.name)])
        return await agent.state("r1")


def _probe(state: dict[str, Any]) -> dict[str, Any]:
    [health] = [e for e in state["evidence"] if e["source"] == "health_check"]
    return health["data"]["probe"]


async def test_hang_seen_by_docker_healthcheck_needs_only_the_quick_probe(tmp_path) -> None:
    worker = FakeService("worker", probe_status=None, health="unhealthy")
    state = await _diagnose(tmp_path, worker)
    assert state["diagnosis"]["category"] == "hang"
    assert worker.probe_timeouts == [0.5]
    probe = _probe(state)
    assert "HEALTHCHECK reports worker unhealthy" in probe["confirmed_by"]
    assert "no answer in 0.5s" in state["diagnosis"]["root_cause"]
    assert state["plan"]["steps"][0]["operation"] == "restart_service"


async def test_unconfirmed_silence_waits_the_full_probe(tmp_path) -> None:
    worker = FakeService("worker", probe_status=None)  # no HEALTHCHECK, no Prometheus
    state = await _diagnose(tmp_path, worker)
    assert worker.probe_timeouts == [0.5, 3.0]
    probe = _probe(state)
    assert "confirmed_by" not in probe and "nothing else has seen it" in probe["quick_probe"]
    assert state["diagnosis"]["category"] == "hang"
    assert "no answer in 3s" in state["diagnosis"]["root_cause"]


async def test_a_busy_slow_service_is_not_called_hung(tmp_path) -> None:
    front = FakeService(
        "front",
        probe_latency_ms=1500,
        health="unhealthy",
        logs=["warn: request queue depth 950 exceeds 500; p99 latency 2300ms"],
    )
    state = await _diagnose(tmp_path, front)
    assert front.probe_timeouts == [0.5, 3.0]
    assert "may only be slow" in _probe(state)["quick_probe"]
    assert state["diagnosis"]["category"] == "overload"


async def test_quick_timeout_equal_to_the_full_one_always_waits(tmp_path) -> None:
    worker = FakeService("worker", probe_status=None, health="unhealthy")
    async with open_agent(_ctx(tmp_path, worker, probe_quick_timeout=3.0)) as agent:
        await _run(agent, "r1", [_alert("worker")])
    assert worker.probe_timeouts == [3.0]


def _result(operation: str, **data: Any) -> OperationResult:
    return OperationResult(operation=operation, target="web", ok=True, message="", data=data)


SILENT = _result(
    "health_check",
    containers=[{"name": "web", "health": "none"}],
    probe={"error": "timeout", "summary": "no answer in 0.5s"},
)
QUIET_LOGS = _result("get_logs", error_lines=[], tail=["info: listening"])
IDLE = _result("check_resources", containers=[{"name": "web", "cpu_limit_cpus": 1.0}])


def _prometheus(**data: Any) -> list[dict[str, Any]]:
    return [{"source": "prometheus", "ok": True, "summary": "", "data": data}]


def test_prometheus_confirms_when_it_cannot_scrape_or_its_probe_fails() -> None:
    seen, _ = confirmed_hang(SILENT, QUIET_LOGS, IDLE, _prometheus(up=0.0), 0.5)
    assert seen is not None and "up 0" in seen
    seen, _ = confirmed_hang(SILENT, QUIET_LOGS, IDLE, _prometheus(up=1.0, health_up=0.0), 0.5)
    assert seen is not None and "health check fails in Prometheus" in seen
    seen, why = confirmed_hang(SILENT, QUIET_LOGS, IDLE, _prometheus(up=1.0, health_up=1.0), 0.5)
    assert seen is None and "nothing else" in why
    failed = [{"source": "prometheus", "ok": False, "summary": "", "data": {"up": 0.0}}]
    assert confirmed_hang(SILENT, QUIET_LOGS, IDLE, failed, 0.5)[0] is None


def test_signs_of_load_win_over_confirmation() -> None:
    slow = _prometheus(up=0.0, latency_p99_s=2.0)
    seen, why = confirmed_hang(SILENT, QUIET_LOGS, IDLE, slow, 0.5)
    assert seen is None and "2000 ms" in why
    fast = _prometheus(up=0.0, latency_p99_s=0.01)  # earlier requests were fast: still a hang
    assert confirmed_hang(SILENT, QUIET_LOGS, IDLE, fast, 0.5)[0] is not None
    throttled = _result(
        "check_resources",
        containers=[{"name": "web", "cpu_limit_cpus": 0.2, "cpu_of_limit_percent": 99.0}],
    )
    seen, why = confirmed_hang(SILENT, QUIET_LOGS, throttled, _prometheus(up=0.0), 0.5)
    assert seen is None and "CPU quota" in why


def test_missing_evidence_or_a_busy_core_means_wait() -> None:
    failed_logs = OperationResult.failure("get_logs", "web", "timeout", "no answer")
    seen, why = confirmed_hang(SILENT, failed_logs, IDLE, _prometheus(up=0.0), 0.5)
    assert seen is None and "could not be read" in why
    busy = _result("check_resources", containers=[{"name": "web", "cpu_percent": 97.0}])
    seen, why = confirmed_hang(SILENT, QUIET_LOGS, busy, _prometheus(up=0.0), 0.5)
    assert seen is None and "97% busy" in why


def test_only_the_probed_containers_healthcheck_counts() -> None:
    def health(probed: str) -> OperationResult:
        return _result(
            "health_check",
            containers=[
                {"name": "web-1", "health": "healthy"},
                {"name": "web-2", "health": "unhealthy"},
            ],
            probe={"error": "timeout", "summary": "no answer in 0.5s", "container": probed},
        )

    assert confirmed_hang(health("web-1"), QUIET_LOGS, IDLE, [], 0.5)[0] is None
    seen, _ = confirmed_hang(health("web-2"), QUIET_LOGS, IDLE, [], 0.5)
    assert seen is not None and "web-2 unhealthy" in seen


async def test_probe_timeout_setting_is_the_default_of_every_probe(tmp_path) -> None:
    worker = FakeService("worker", probe_status=None)
    async with open_agent(_ctx(tmp_path, worker, probe_timeout=2.0)) as agent:
        await _run(agent, "r1", [_alert("worker")])
        registry = agent.ctx.registry
        await registry.run("health_check", {"target": "worker"})  # as the LLM's tool calls it
    assert worker.probe_timeouts == [0.5, 2.0, 2.0]
