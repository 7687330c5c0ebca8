"""Actions you can trust (issue 12), on real `devops-agent serve` processes and a real engine.

Every count of actions is the engine's own event log, never what the agent says it did. Kills
land where a fault-injection point puts them (devops_agent.faults), so each case is one case.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import pytest

from tests.server.conftest import Server, alert_payload
from tests.support.containers import Lab, compose_labels, wait_for, wait_probe, wait_status

pytestmark = pytest.mark.docker
AUTONOMOUS = {"SAFETY_MODE": "false", "AUTO_APPROVE_MAX_RISK": "medium", "VALIDATE_TIMEOUT": "20"}
MUTATIONS = ("start", "restart", "kill", "stop", "unpause", "pause", "destroy", "create")
# Restarts on every start: a hang that a restart does not cure.
ALWAYS_HUNG = ["/bin/sh", "-c", "touch /run/hang; exec /app/run"]


def mutations(client: docker.DockerClient, container_id: str, since: float) -> list[str]:
    """The mutating events the engine recorded for one container since `since`."""
    found = client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "container": container_id},
    )
    return [
        str(e.get("Action"))
        for e in found
        if e.get("Action") in MUTATIONS and int(e.get("timeNano", 0)) >= int(since * 1e9)
    ]


def ledger(srv: Server, run_id: str) -> list[tuple[str, str, int]]:
    with sqlite3.connect(srv.data_dir / "agent.db") as conn:
        return list(
            conn.execute(
                "SELECT operation, status, reconciled FROM action_ledger WHERE run_id = ? "
                "ORDER BY id",
                (run_id,),
            )
        )


def audited_actions(srv: Server, run_id: str) -> int:
    with sqlite3.connect(srv.data_dir / "agent.db") as conn:
        query = "SELECT count(*) FROM audit_log WHERE run_id = ? AND kind = 'action'"
        return int(conn.execute(query, (run_id,)).fetchone()[0])


def first_run(srv: Server, payload: dict[str, Any]) -> str:
    response = srv.webhook(payload)
    assert response.status_code == 202, response.text
    return str(response.json()["runs"][0]["run_id"])


def test_an_alert_naming_a_container_id_prefix_never_reaches_that_container(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    victim = lab.crashed()  # broken, so an agent that resolved it would restart it
    srv = make_server(**AUTONOMOUS)
    since = time.time()
    run_id = first_run(srv, alert_payload(victim.container_id[:12]))
    run = srv.wait_status(run_id, "completed")
    assert mutations(docker_client, victim.container_id, since) == []
    assert docker_client.containers.get(victim.container_id).status == "exited"
    assert (run["outcome"], run["escalation_reason"]) == ("escalated", "unknown_target"), run
    assert run["actions"] == []


def test_a_service_in_two_compose_projects_is_ambiguous_unless_the_alert_names_one(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    service = f"api{lab.lab_id}"
    ours = lab.start(lab._name("p1"), labels=compose_labels(service, "shop"))
    theirs = lab.start(lab._name("p2"), labels=compose_labels(service, "billing"))
    for started in (ours, theirs):
        lab.exec(started, "touch", "/run/crash")
        wait_status(docker_client, started.name, "exited")
    srv = make_server(**AUTONOMOUS)
    since = time.time()

    run_id = first_run(srv, alert_payload(service))
    run = srv.wait_status(run_id, "completed")
    assert mutations(docker_client, ours.container_id, since) == []
    assert mutations(docker_client, theirs.container_id, since) == []
    assert (run["outcome"], run["escalation_reason"]) == ("escalated", "ambiguous_target"), run
    assert "shop/" in run["escalation"] and "billing/" in run["escalation"]

    payload = alert_payload(service)
    payload["alerts"][0]["labels"]["project"] = "shop"
    run = srv.wait_status(first_run(srv, payload), "completed")
    assert run["outcome"] == "resolved", run
    wait_probe(ours.health_url, 200, timeout=30)
    assert "start" in mutations(docker_client, ours.container_id, since)
    assert mutations(docker_client, theirs.container_id, since) == []


def test_killed_between_the_ledger_and_the_engine_the_restart_runs_once_after_recovery(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    """The ledger says `started`, the engine never saw the restart: after the restart of the
    agent the step runs (once), it is not skipped as if it had happened."""
    app = lab.crashed()
    srv = make_server(**AUTONOMOUS, DEVOPS_AGENT_FAULTS="after_begin_step=kill")
    since = time.time()
    run_id = first_run(srv, alert_payload(app.name))
    assert srv.proc is not None
    srv.proc.wait(timeout=120)  # killed at the fault point
    assert ledger(srv, run_id) == [("restart_service", "started", 0)]
    assert mutations(docker_client, app.container_id, since) == []

    srv.extra_env.pop("DEVOPS_AGENT_FAULTS")
    srv.start()
    run = srv.wait_status(run_id, "completed")
    assert run["outcome"] == "resolved" and run["attempts"] == 1, run
    assert [(a["status"], a["reconciled"]) for a in run["actions"]] == [("succeeded", False)]
    assert mutations(docker_client, app.container_id, since) == ["start"]
    assert audited_actions(srv, run_id) == 1


def test_killed_after_the_engine_acted_the_step_is_found_done_and_audited(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    """The engine restarted the container, the agent died before recording it: reconciled
    with the container's state, the step is `succeeded` with `reconciled`, never run again, and
    its audit row is there."""
    app = lab.crashed()
    srv = make_server(**AUTONOMOUS, DEVOPS_AGENT_FAULTS="after_backend_call=kill")
    since = time.time()
    run_id = first_run(srv, alert_payload(app.name))
    assert srv.proc is not None
    srv.proc.wait(timeout=120)
    assert ledger(srv, run_id) == [("restart_service", "started", 0)]
    assert audited_actions(srv, run_id) == 0

    srv.extra_env.pop("DEVOPS_AGENT_FAULTS")
    srv.start()
    run = srv.wait_status(run_id, "completed")
    assert run["outcome"] == "resolved" and run["attempts"] == 1, run
    assert [(a["status"], a["reconciled"]) for a in run["actions"]] == [("succeeded", True)]
    assert ledger(srv, run_id) == [("restart_service", "succeeded", 1)]
    assert mutations(docker_client, app.container_id, since) == ["start"]
    assert audited_actions(srv, run_id) == 1


def test_a_decision_answers_its_request_not_the_next_one(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    """Attempt 1 is approved; attempt 2 asks again and the agent dies before the run is marked
    waiting. After recovery the second request waits for a person: the first decision does not
    approve it, and a decision naming the first request is refused as stale."""
    app = lab.start(lab._name("hung"), command=ALWAYS_HUNG, wait_healthy=False)
    srv = make_server(VALIDATE_TIMEOUT="2", DEVOPS_AGENT_FAULTS="before_mark_awaiting=kill@2")
    run_id = first_run(srv, alert_payload(app.name))
    wait_for(lambda: bool(srv.get("/approvals").json()["approvals"]), timeout=120, what="request 1")
    first = srv.get("/approvals").json()["approvals"][0]
    assert first["run_id"] == run_id and first["reason"] == "safety_mode"
    since = time.time()
    response = srv.resume(run_id, "approve", request_id=first["request_id"])
    assert response.status_code == 202, response.text
    assert srv.proc is not None
    srv.proc.wait(timeout=120)  # killed as attempt 2's request was about to be recorded

    srv.extra_env.pop("DEVOPS_AGENT_FAULTS")
    srv.start()
    run = srv.wait_status(run_id, "awaiting_approval")
    second = run["approval_request"]
    assert second["request_id"] != first["request_id"] and second["attempt"] == 2, run
    assert mutations(docker_client, app.container_id, since).count("restart") == 1

    stale = srv.resume(run_id, "approve", request_id=first["request_id"])
    assert stale.status_code == 409 and stale.json()["reason"] == "stale_request", stale.text
    bo = srv.add_user("bo", "approver")
    assert srv.resume(run_id, "reject", bo, request_id=second["request_id"]).status_code == 202
    run = srv.wait_status(run_id, "completed")
    assert (run["outcome"], run["approval"]["approver"]) == ("rejected", "bo"), run
    assert mutations(docker_client, app.container_id, since).count("restart") == 1


@pytest.mark.parametrize("approver", ["policy", "system", "alertmanager", "studio", " ", "Policy"])
def test_reserved_approver_names_are_refused(server: Server, approver: str) -> None:
    response = server.resume("any-run", "approve", approver=approver)
    assert response.status_code == 422, response.text
    assert "approver" in response.text


def test_five_callers_of_one_stopped_database_start_it_once(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    """Five services alert at once because the database they share is down. It gets exactly
    one mutating event; every run completes, and those that did not act say why."""
    db = lab.start(lab._name("db"), env={"APP_WORKLOAD": "db"})
    callers = [
        lab.start(
            lab._name(f"caller{i}"),
            env={"UPSTREAM_NAME": db.name, "UPSTREAM_PORT": str(db.port)},
            labels={"devops-agent.depends-on": db.name},
        )
        for i in range(5)
    ]
    lab.container(db).stop(timeout=2)
    for caller in callers:
        wait_probe(caller.health_url, 503)
    srv = make_server(**AUTONOMOUS, MAX_ACTIONS_PER_SERVICE_PER_HOUR="3")
    since = time.time()
    with ThreadPoolExecutor(5) as pool:
        run_ids = list(pool.map(lambda c: first_run(srv, alert_payload(c.name)), callers))
    runs = [srv.wait_status(r, "completed") for r in run_ids]
    assert mutations(docker_client, db.container_id, since) == ["start"], runs
    acted = [r for r in runs if any(a["target"] == db.name for a in r["actions"])]
    assert len(acted) == 1 and acted[0]["outcome"] == "resolved", runs
    others = [r for r in runs if r is not acted[0]]
    for run in others:
        assert (run["outcome"], run["escalation_reason"]) == ("superseded", "joined"), run
        assert run["handled_by"] == acted[0]["run_id"], run
    for caller in callers:
        wait_probe(caller.health_url, 200, timeout=30)


def test_a_caller_and_its_dependency_alerting_together_are_one_incident(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    """The database's own alert and its caller's come together: the database is started once,
    by one run, which validates it; the other run ends joined, naming the run that handled it,
    with its own service seen healthy again."""
    both = lab.dependency_down()
    # A database stopped cleanly (exit 0) is a crash the rules are less sure of (0.75).
    srv = make_server(**AUTONOMOUS, CONFIDENCE_THRESHOLD="0.7")
    since = time.time()
    payloads = [alert_payload(both.dependency.name), alert_payload(both.app.name)]
    with ThreadPoolExecutor(2) as pool:
        run_ids = list(pool.map(lambda p: first_run(srv, p), payloads))
    runs = [srv.wait_status(r, "completed") for r in run_ids]
    assert mutations(docker_client, both.dependency.container_id, since) == ["start"], runs
    assert mutations(docker_client, both.app.container_id, since) == []
    (handler,) = [r for r in runs if r["outcome"] == "resolved"]
    (joined,) = [r for r in runs if r is not handler]
    assert (joined["outcome"], joined["escalation_reason"]) == ("superseded", "joined"), joined
    assert joined["handled_by"] == handler["run_id"]
    assert joined["validation"]["healthy"] is True, joined
    assert {c["target"] for c in handler["validation"]["checks"]} >= {both.dependency.name}
