"""A replica SIGKILLed in the middle of execute: another replica takes the run over once the
lease ran out, continues it from its last checkpoint, and the action ran once, as counted from
the Docker engine's own events. The resume goes to a replica that does not hold the run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker
import pytest

from tests.replicas.conftest import Database, holder
from tests.server.conftest import DEADLINE, Server, alert_payload
from tests.support.containers import Lab, wait_probe

pytestmark = pytest.mark.docker
LEASE = "3"
# PID 1 is `sleep`, which ignores SIGTERM: a restart waits for its stop timeout (5 s) before the
# engine kills it, which leaves a wide, honest window to kill the replica during the restart.
SLOW_STOP = ["/bin/sh", "-c", 'httpd -f -p "127.0.0.1:$PORT" -h /www & exec sleep 100000']


def events(
    client: docker.DockerClient, name: str, since: float, actions: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The engine's own record of `actions` on container `name` since `since`."""
    found = client.events(
        since=int(since), until=int(time.time()) + 1, decode=True, filters={"container": name}
    )
    return [
        e
        for e in found
        if e.get("Type") == "container"
        and e.get("Action") in actions
        and int(e.get("timeNano", 0)) >= int(since * 1e9)
    ]


def test_replica_killed_mid_restart_the_run_finishes_on_another_and_acts_once(
    replicas: Callable[..., list[Server]],
    db: Database,
    lab: Lab,
    docker_client: docker.DockerClient,
) -> None:
    servers = replicas(2, RUN_LEASE_SECONDS=LEASE)
    app = lab.start(lab._name("slowstop"), command=SLOW_STOP)
    lab.exec(app, "touch", "/run/hang")  # the probe hangs: `hang`, the plan is a restart
    since = time.time()
    first, second = servers
    run_id = first.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    run = second.wait_status(run_id, "awaiting_approval")
    assert [s["operation"] for s in run["plan"]["steps"]] == ["restart_service"], run
    assert db.value("SELECT owner FROM runs WHERE run_id = %s", run_id) is None

    # The decision goes to whichever replica did not drive the run so far.
    asked = second if "claimed run " + run_id not in second.logs() else first
    assert asked.resume(run_id, "approve").status_code == 202

    # Wait for the engine's SIGTERM of the restart: the restart is in progress now.
    deadline = time.monotonic() + DEADLINE
    while not events(docker_client, app.name, since, ("kill",)):
        assert time.monotonic() < deadline, "the restart never began"
        time.sleep(0.05)
    busy = holder(servers, db.value("SELECT owner FROM runs WHERE run_id = %s", run_id))
    assert busy is not None, "nobody holds the run while it restarts the container"
    assert db.value("SELECT status FROM action_ledger WHERE run_id = %s", run_id) == "started"
    busy.kill()
    survivor = second if busy is first else first

    run = survivor.wait_status(run_id, "completed", "failed")
    assert (run["status"], run["outcome"]) == ("completed", "resolved"), run
    assert f"claimed run {run_id}" in survivor.logs()
    wait_probe(app.health_url, 200, timeout=30)
    assert len(events(docker_client, app.name, since, ("restart",))) == 1
    ledger = db.rows(
        "SELECT operation, count(*) FROM action_ledger WHERE run_id = %s GROUP BY operation",
        run_id,
    )
    assert ledger == [("restart_service", 1)]
    # The restart began before the kill and the engine finished it: found done in reality, not
    # run again, and not taken for a step that finished before a resume (`skipped`).
    assert [(a["status"], a["reconciled"]) for a in run["actions"]] == [("succeeded", True)], run
    assert db.rows("SELECT status, reconciled FROM action_ledger WHERE run_id = %s", run_id) == [
        ("succeeded", True)
    ]
    assert run["approval"]["approver"] == "admin"
