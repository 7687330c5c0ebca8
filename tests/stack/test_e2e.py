"""Prometheus scrapes a real container, Alertmanager's own webhook starts the run, the agent
acts (or waits for a person), and Alertmanager's resolved notification follows."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import docker
import pytest

from tests.stack.conftest import Stack, wait
from tests.stack.example import METRICS_PATH, example_service
from tests.support.containers import Lab, probe

pytestmark = pytest.mark.docker
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def _metric(stack: Stack, name: str, **labels: str) -> float:
    """One sample of the agent's own /metrics (0 when absent)."""
    text = stack.server.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _the_run(stack: Stack, service: str) -> dict[str, Any]:
    def found() -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = stack.server.get("/runs", params={"service": service}).json()[
            "runs"
        ]
        return runs

    [run] = wait(found, f"a run for {service}")
    return run


def _from_alertmanager(alert: dict[str, Any], service: str, address: str) -> None:
    """Labels only Prometheus and Alertmanager put there: job, instance, the rule's own."""
    assert FINGERPRINT.match(alert["fingerprint"]), alert
    labels = alert["labels"]
    assert labels["alertname"] == "ServiceDown"
    assert labels["service"] == service and labels["job"] == "services"
    assert labels["instance"] == address and labels["severity"] == "critical"


def test_crash_is_detected_remediated_and_resolved_safety_off(
    make_stack: Callable[..., Stack], lab: Lab, docker_client: docker.DockerClient
) -> None:
    stack = make_stack(SAFETY_MODE="false", AUTO_APPROVE_MAX_RISK="medium")
    app, address = example_service(lab)
    stack.scrape(app.name, address, METRICS_PATH)

    lab.exec(app, "touch", "/run/crash")  # the process panics and exits with code 2

    run = _the_run(stack, app.name)
    [alert] = run["alerts"]
    _from_alertmanager(alert, app.name, address)
    done = stack.server.wait_status(run["run_id"], "completed")
    assert done["outcome"] == "resolved", done
    assert done["diagnosis"]["category"] == "crash"
    assert [a["operation"] for a in done["actions"]] == ["restart_service"]
    assert probe(app.health_url) == 200
    assert docker_client.containers.get(app.name).status == "running"

    # Prometheus sees it up again, the alert resolves, Alertmanager sends the resolution.
    wait(
        lambda: _metric(stack, "devops_agent_alerts_received_total", status="resolved") >= 1,
        "Alertmanager's resolved notification",
    )
    # The resolution is kept on the finished run, beside the firing alert it ends.
    statuses = {(a["fingerprint"], a["status"]) for a in stack.server.run(run["run_id"])["alerts"]}
    assert statuses == {(alert["fingerprint"], "firing"), (alert["fingerprint"], "resolved")}
    assert stack.server.run(run["run_id"])["outcome"] == "resolved"
    assert _metric(stack, "devops_agent_webhook_requests_total", code="202") >= 2
    assert not stack.alertmanager_alerts(app.name)
    assert _metric(stack, "devops_agent_runs_finished_total", outcome="resolved") == 1
    assert _metric(stack, "devops_agent_actions_total", operation="restart_service") == 1
    assert _metric(stack, "devops_agent_time_to_resolution_seconds_count") == 1
    assert _metric(stack, "devops_agent_reasoner_calls_total", reasoner="rules") >= 1
    # ... and Prometheus scrapes the agent's own metrics with the API token.
    wait(
        lambda: stack.prometheus('devops_agent_runs_finished_total{outcome="resolved"} == 1'),
        "Prometheus to scrape the agent",
    )


def test_crash_waits_for_approval_then_resolution_supersedes_safety_on(
    make_stack: Callable[..., Stack], lab: Lab
) -> None:
    stack = make_stack(SAFETY_MODE="true")
    app, address = example_service(lab)
    stack.scrape(app.name, address, METRICS_PATH)

    lab.exec(app, "touch", "/run/crash")

    run = _the_run(stack, app.name)
    waiting = stack.server.wait_status(run["run_id"], "awaiting_approval")
    [alert] = waiting["alerts"]
    _from_alertmanager(alert, app.name, address)
    [active] = stack.alertmanager_alerts(app.name)
    assert active["fingerprint"] == alert["fingerprint"]  # the same alert, as Alertmanager knows it
    assert waiting["plan"]["steps"][0]["operation"] == "restart_service"
    assert waiting["actions"] == []
    assert _metric(stack, "devops_agent_approvals_waiting") == 1

    # Someone fixes it by hand; the resolved notification closes the waiting run.
    lab.container(app).start()
    done = stack.server.wait_status(run["run_id"], "completed")
    assert done["outcome"] == "superseded", done
    statuses = {(a["fingerprint"], a["status"]) for a in done["alerts"]}
    assert statuses == {(alert["fingerprint"], "firing"), (alert["fingerprint"], "resolved")}
    assert done["actions"] == []
