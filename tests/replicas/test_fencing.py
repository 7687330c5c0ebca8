"""Fencing: a replica paused between the ledger's begin and the engine call, past its lease, does
not act when it wakes up. The other replica took the run over, found the step not done in
reality and ran it: the engine's events show one action."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from tests.replicas.conftest import Database
from tests.server.conftest import Server, alert_payload
from tests.server.test_trusted_actions import AUTONOMOUS, mutations
from tests.support.containers import Lab, wait_for, wait_probe

pytestmark = pytest.mark.docker


def stopped(pid: int) -> bool:
    """Whether the process is stopped by a signal (state T in /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def test_a_replica_paused_past_its_lease_does_not_act_when_it_wakes(
    replicas: Callable[..., list[Server]],
    db: Database,
    lab: Lab,
    docker_client: docker.DockerClient,
) -> None:
    app = lab.crashed()
    settings = {**AUTONOMOUS, "RUN_LEASE_SECONDS": "3", "AUDIT_KEY": "fencing-test-key"}
    (paused,) = replicas(1, **settings, DEVOPS_AGENT_FAULTS="after_begin_step=stop")
    assert paused.proc is not None
    since = time.time()
    run_id = paused.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    wait_for(lambda: stopped(paused.proc.pid), timeout=120, what="the replica to stop itself")  # type: ignore[union-attr]
    assert db.rows("SELECT status FROM action_ledger WHERE run_id = %s", run_id) == [("started",)]

    (survivor,) = replicas(1, **settings)
    run = survivor.wait_status(run_id, "completed")
    assert run["outcome"] == "resolved", run
    assert [(a["status"], a["reconciled"]) for a in run["actions"]] == [("succeeded", False)]
    wait_probe(app.health_url, 200, timeout=30)

    os.kill(paused.proc.pid, signal.SIGCONT)
    wait_for(
        lambda: f"run {run_id}" in paused.logs() and "left to the replica" in paused.logs(),
        timeout=60,
        what="the woken replica to give the run up",
    )
    assert mutations(docker_client, app.container_id, since) == ["start"]
    assert db.rows("SELECT status, reconciled FROM action_ledger WHERE run_id = %s", run_id) == [
        ("succeeded", False)
    ]
    assert db.value("SELECT status FROM runs WHERE run_id = %s", run_id) == "completed"
