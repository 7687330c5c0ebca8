"""A run paused for approval survives its process; a resumed execute never repeats a step."""

from __future__ import annotations

import subprocess
import sys
import time

import docker
import pytest

from devops_agent.memory.store import Store
from tests.support.containers import Lab, probe

pytestmark = pytest.mark.docker


def drive(db_url: str, run_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.drive", db_url, run_id, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def starts(client: docker.DockerClient, name: str, since: float) -> list[str]:
    """The start/restart/unpause events the engine itself recorded for a container."""
    events = client.events(
        since=int(since), until=int(time.time()) + 1, decode=True, filters={"container": name}
    )
    return [
        e["Action"]
        for e in events
        if e.get("Action") in ("start", "restart", "unpause") and e["timeNano"] > since * 1e9
    ]


async def test_approval_survives_the_process_and_acts_once(
    tmp_path, lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    since = time.time()
    db = f"sqlite+aiosqlite:///{tmp_path}/agent.db"
    first = drive(db, "run-1", "start", app.name)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == [
        "triage",
        "root_cause",
        "plan",
        "approve",
        "__interrupt__",
        "waiting",
    ]
    assert probe(app.health_url) is None  # nothing acted while waiting

    second = drive(db, "run-1", "resume", "approve")  # a new process on the same file
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["await_approval", "execute", "validate", "learn", "resolved"]
    assert probe(app.health_url) == 200

    third = drive(db, "run-1", "resume", "approve")  # a late, repeated approval does nothing
    assert third.returncode == 0, third.stderr
    assert third.stdout.split()[-1] == "resolved"
    assert starts(docker_client, app.name, since) == ["start"]


async def test_process_killed_mid_execute_never_repeats_the_step(
    tmp_path, lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    since = time.time()
    db = f"sqlite+aiosqlite:///{tmp_path}/agent.db"
    assert drive(db, "run-1", "start", app.name).stdout.split()[-1] == "waiting"
    killed = drive(db, "run-1", "resume-and-die", "approve")
    assert killed.returncode == -9  # SIGKILL after the restart, before the ledger recorded its end

    store = Store.from_url(db)
    try:
        entries = await store.ledger("run-1")
        assert [(e.operation, e.status) for e in entries] == [("restart_service", "started")]
    finally:
        await store.close()

    again = drive(db, "run-1", "continue")  # a new process continues from the last checkpoint
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[-1] == "resolved"
    assert probe(app.health_url) == 200
    assert starts(docker_client, app.name, since) == ["start"]  # the engine saw one start, not two
