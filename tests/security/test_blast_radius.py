"""Blast radius on real containers: the per-service action limit and the circuit breaker.

Each refusal is recorded with its reason (on the run and in the audit trail), and the Docker
engine shows the container untouched after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import docker

from tests.server.conftest import Server, alert_payload, starts
from tests.support.containers import Lab, wait_status

AUTONOMOUS = {"SAFETY_MODE": "false", "AUTO_APPROVE_MAX_RISK": "medium"}
# Runs one second, panics and exits: a restart "succeeds" but never makes it healthy.
CRASHER = ["/bin/sh", "-c", "sleep 1; echo 'panic: runtime error: boom' >&2; exit 2"]


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
    srv = make_server(**AUTONOMOUS, MAX_ACTIONS_PER_SERVICE_PER_HOUR="1")
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
    bad = lab.start(lab._name("crasher"), wait_healthy=False, command=CRASHER)
    wait_status(docker_client, bad.name, "exited", timeout=20)
    first = _run(srv, bad.name)
    assert first["outcome"] == "escalated", first
    assert [a["status"] for a in first["actions"]] == ["succeeded"]  # acted, still unhealthy
    wait_status(docker_client, bad.name, "exited", timeout=20)
    since = time.time()
    second = _run(srv, bad.name)
    assert second["outcome"] == "escalated" and second["actions"] == []
    assert "circuit breaker open" in second["escalation"], second["escalation"]
    assert "circuit breaker open" in _policy_refusal(srv, second)
    assert starts(docker_client, bad.name, since) == []
