"""Learning that learns (issue 14.4): the real graph through repeated real faults, no history
written by hand. Each outcome is filed under the incident's first diagnosis with what was tried
and whether it held; the next plan reads it."""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import pytest

from tests.server.conftest import Server, alert_payload
from tests.server.test_settle import CRASHES_AGAIN
from tests.server.test_trusted_actions import AUTONOMOUS, first_run, mutations
from tests.support.containers import Lab, Started, wait_probe, wait_status

pytestmark = pytest.mark.docker


def crash(lab: Lab, docker_client: docker.DockerClient, app: Started) -> None:
    wait_probe(app.health_url, 200, timeout=30)
    lab.exec(app, "touch", "/run/crash")
    wait_status(docker_client, app.name, "exited")


def test_a_restart_that_did_not_hold_is_not_tried_by_itself_next_time(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.start(lab._name("flaky"), command=CRASHES_AGAIN, wait_healthy=False)
    docker_client.containers.get(app.container_id).wait(timeout=60)
    srv = make_server(**AUTONOMOUS, VALIDATE_SETTLE="8", REMEDIATION_COOLDOWN="0")
    since = time.time()
    first = srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")
    assert first["escalation_reason"] == "crash_loop", first
    docker_client.containers.get(app.container_id).wait(timeout=60)  # it crashed again

    second = srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")
    assert (second["outcome"], second["escalation_reason"]) == ("escalated", "ineffective_chain")
    assert second["diagnosis"]["category"] == "crash" and second["actions"] == []
    assert "held 0 of 1 times in 7 days" in second["escalation"], second
    assert mutations(docker_client, app.container_id, since).count("start") == 1


def test_a_crash_soon_after_a_fix_that_held_is_a_crash_loop(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    srv = make_server(**AUTONOMOUS, REMEDIATION_COOLDOWN="0", CRASH_LOOP_WINDOW="300")
    first = srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")
    assert first["outcome"] == "resolved" and first["validation"]["held"], first
    crash(lab, docker_client, app)
    since = time.time()
    second = srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")
    assert second["diagnosis"]["category"] == "crash_loop", second
    assert "CRASH_LOOP_WINDOW=300" in second["diagnosis"]["root_cause"]
    assert second["escalation_reason"] == "crash_loop" and second["actions"] == []
    assert mutations(docker_client, app.container_id, since) == []


def test_the_plan_cites_what_it_learned(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    srv = make_server(**AUTONOMOUS, REMEDIATION_COOLDOWN="0", CRASH_LOOP_WINDOW="0")
    assert srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")["outcome"] == (
        "resolved"
    )
    crash(lab, docker_client, app)
    second = srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")
    assert second["outcome"] == "resolved", second
    assert "restart_service held 1 of 1 times in 7 days" in second["plan"]["why"]
