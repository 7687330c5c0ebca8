"""A fix must hold (issue 14.1): after the first healthy probe, the target is watched through
VALIDATE_SETTLE before the run is `resolved`; a run in its window holds no worker."""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import pytest

from tests.server.conftest import Server, alert_payload
from tests.server.test_trusted_actions import AUTONOMOUS, first_run, mutations
from tests.support.containers import Lab, wait_for, wait_probe, wait_status

pytestmark = pytest.mark.docker
# Crashes three seconds after every start: a restart brings it back, for a moment.
CRASHES_AGAIN = ["/bin/sh", "-c", "(sleep 3; touch /run/crash) & exec /app/run"]


def test_a_fix_that_does_not_hold_is_not_resolved(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.start(lab._name("flaky"), command=CRASHES_AGAIN, wait_healthy=False)
    docker_client.containers.get(app.container_id).wait(timeout=60)  # the first crash
    srv = make_server(**AUTONOMOUS, VALIDATE_SETTLE="8")
    since = time.time()
    run = srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")
    assert (run["outcome"], run["escalation_reason"]) == ("escalated", "crash_loop"), run
    assert run["diagnosis"]["category"] == "crash_loop"
    assert [a["operation"] for a in run["actions"]] == ["restart_service"]  # not a second time
    assert mutations(docker_client, app.container_id, since).count("start") == 1


def test_a_fix_that_holds_is_resolved_after_its_window(
    make_server: Callable[..., Server], lab: Lab
) -> None:
    app = lab.crashed()
    srv = make_server(**AUTONOMOUS, VALIDATE_SETTLE="2")
    run = srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")
    assert run["outcome"] == "resolved", run
    validation = run["validation"]
    assert validation["held"] is True and validation["settle_until"], validation
    assert validation["alerts_cleared"] is None  # no ALERTMANAGER_URL: nobody asked


def test_a_run_in_its_window_holds_no_worker(make_server: Callable[..., Server], lab: Lab) -> None:
    """One worker: the first run parks in a long window, and the second runs meanwhile."""
    first, second = lab.crashed(), lab.crashed()
    srv = make_server(**AUTONOMOUS, VALIDATE_SETTLE="600", MAX_CONCURRENT_RUNS="1")
    settling_id = first_run(srv, alert_payload(first.name))
    settling = srv.wait_run(
        settling_id, lambda r: bool((r["validation"] or {}).get("settle_until")), "settling"
    )
    assert settling["status"] == "running" and settling["validation"]["held"] is None
    wait_probe(first.health_url, 200, timeout=30)

    other_id = first_run(srv, alert_payload(second.name))
    other = srv.wait_run(
        other_id, lambda r: bool((r["validation"] or {}).get("settle_until")), "settling too"
    )
    assert [a["status"] for a in other["actions"]] == ["succeeded"]
    assert srv.run(settling_id)["status"] == "running"  # still in its window, parked


def test_a_resolved_notification_stops_an_autonomous_run_before_it_acts(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient, tmp_path
) -> None:
    """The run is held right before its first step (a fault-injection pause) while the
    resolution comes in: it ends superseded, and the engine saw no action."""
    app = lab.crashed()
    srv = make_server(
        **AUTONOMOUS,
        DEVOPS_AGENT_FAULTS="before_begin_step=pause",
        DEVOPS_AGENT_FAULT_DIR=str(tmp_path),
    )
    since = time.time()
    payload = alert_payload(app.name)
    run_id = first_run(srv, payload)
    wait_for(lambda: (tmp_path / "before_begin_step.reached").exists(), timeout=120)
    resolved = alert_payload(
        app.name,
        "resolved",
        fingerprint=payload["alerts"][0]["fingerprint"],
        starts_at=payload["alerts"][0]["startsAt"],
    )
    assert srv.webhook(resolved).status_code == 202
    (tmp_path / "before_begin_step.go").touch()
    run = srv.wait_status(run_id, "completed")
    assert run["outcome"] == "superseded" and run["actions"] == [], run
    assert mutations(docker_client, app.container_id, since) == []


def test_a_service_fixed_moments_ago_is_not_acted_on_again_by_itself(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    srv = make_server(**AUTONOMOUS, REMEDIATION_COOLDOWN="600")
    first = srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")
    assert first["outcome"] == "resolved", first
    lab.exec(app, "touch", "/run/crash")
    wait_status(docker_client, app.name, "exited")
    since = time.time()
    second = srv.wait_status(first_run(srv, alert_payload(app.name)), "awaiting_approval")
    assert second["approval_request"]["reason"] == "recently_remediated", second
    assert mutations(docker_client, app.container_id, since) == []
