"""Blast radius on real containers: the per-service action limit and the circuit breaker.

Each refusal is recorded with its reason (on the run and in the audit trail), and the Docker
engine shows the container untouched after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import docker

from tests.server.conftest import Server, alert_payload, starts
from tests.support.containers import LABEL_HEALTH_URL, Lab, compose_labels, free_port, wait_status

AUTONOMOUS = {"SAFETY_MODE": "false", "AUTO_APPROVE_MAX_RISK": "medium"}
# Runs one second, panics and exits: a restart "succeeds" but never makes it healthy.
ALWAYS_HUNG = ["/bin/sh", "-c", "touch /run/hang; exec /app/run"]


def _run(srv: Server, service: str) -> dict:
    response = srv.webhook(alert_payload(service))
    assert response.status_code == 202, response.text
    return srv.wait_status(response.json()["runs"][0]["run_id"], "completed")


def _policy_refusal(srv: Server, run: dict) -> str:
    rows = srv.get("/audit", params={"run_id": run["run_id"], "kind": "approval"}).json()["rows"]
    assert [r["actor"] for r in rows] == ["policy"]
    assert rows[0]["detail"]["decision"] == "reject"
    return str(rows[0]["detail"]["why"])


def test_actions_per_service_limit_on_a_real_container(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    # The same service crashes twice in a row: no cooldown, no crash-loop window, so the only
    # thing that stops the second restart is the limit under test.
    srv = make_server(
        **AUTONOMOUS,
        MAX_ACTIONS_PER_SERVICE_PER_HOUR="1",
        REMEDIATION_COOLDOWN="0",
        CRASH_LOOP_WINDOW="0",
    )
    crashed = lab.crashed()
    first = _run(srv, crashed.name)
    assert first["outcome"] == "resolved" and [a["status"] for a in first["actions"]] == [
        "succeeded"
    ]
    lab.exec(crashed, "touch", "/run/crash")
    wait_status(docker_client, crashed.name, "exited")
    since = time.time()
    second = _run(srv, crashed.name)
    assert second["outcome"] == "escalated" and second["actions"] == []
    assert "MAX_ACTIONS_PER_SERVICE_PER_HOUR=1" in second["escalation"]
    assert "MAX_ACTIONS_PER_SERVICE_PER_HOUR=1" in _policy_refusal(srv, second)
    assert starts(docker_client, crashed.name, since) == []
    assert docker_client.containers.get(crashed.name).status == "exited"


def test_circuit_breaker_on_a_real_container(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    srv = make_server(**AUTONOMOUS, BREAKER_FAILURES="1", MAX_ATTEMPTS="1", VALIDATE_TIMEOUT="4")
    # Hung at every start: the restart does not heal it, which opens the breaker. The second
    # incident is of another kind (a crash), so nothing learned about hangs stops it first.
    bad = lab.start(lab._name("hung"), wait_healthy=False, command=ALWAYS_HUNG)
    first = _run(srv, bad.name)
    assert first["outcome"] == "escalated", first
    assert [a["status"] for a in first["actions"]] == ["succeeded"]  # acted, still unhealthy
    lab.exec(bad, "touch", "/run/crash")
    wait_status(docker_client, bad.name, "exited", timeout=20)
    since = time.time()
    second = _run(srv, bad.name)
    assert second["outcome"] == "escalated" and second["actions"] == []
    assert "circuit breaker open" in second["escalation"], second["escalation"]
    assert "circuit breaker open" in _policy_refusal(srv, second)
    assert starts(docker_client, bad.name, since) == []


def test_failed_scale_is_rolled_back_on_a_real_compose_service(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    """At its CPU quota and failing its probe: scaled out, still failing, so scaled back."""
    srv = make_server(**AUTONOMOUS, MAX_ATTEMPTS="1", VALIDATE_TIMEOUT="5")
    service, project = f"sec-svc-{lab.lab_id}", f"lab{lab.lab_id}"
    labels = {
        **compose_labels(service, project),
        LABEL_HEALTH_URL: f"http://127.0.0.1:{free_port()}/health",  # nothing answers there
    }
    lab.start(
        lab._name("batch"),
        env={"APP_WORKLOAD": "batch"},
        labels=labels,
        nano_cpus=200_000_000,
        wait_healthy=False,
    )
    selector = {"label": f"com.docker.compose.service={service}"}
    try:
        run = _run(srv, service)
    finally:
        lab.created.extend(
            str(c.id) for c in docker_client.containers.list(all=True, filters=selector)
        )
    assert run["diagnosis"]["category"] == "cpu_saturation", run["diagnosis"]
    moves = [(a["operation"], a["params"].get("replicas"), a["status"]) for a in run["actions"]]
    assert moves == [("scale_service", 2, "succeeded"), ("scale_service", 1, "succeeded")], moves
    # the audit trail says which step the second one undid
    rows = srv.get("/audit", params={"run_id": run["run_id"], "kind": "action"}).json()["rows"]
    assert [r["detail"].get("rollback_of") for r in rows] == [None, 0], rows
    assert run["outcome"] == "escalated" and "rolled back" in run["escalation"]
    assert len(docker_client.containers.list(all=True, filters=selector)) == 1
