"""Deadlines at the decision (issue 22.2): a decision that comes after the run's deadline is
refused at once (409, the run escalates as expired), not accepted until the next sweep; the
sweep pages through every overdue run, not the first 500."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import docker

from devops_agent.memory.run_repo import RunRepo
from devops_agent.memory.runs import AWAITING
from devops_agent.state import utcnow
from tests.server.conftest import Server, alert_payload
from tests.server.test_trusted_actions import mutations
from tests.support.containers import Lab


def test_a_late_decision_is_refused_and_the_run_expires(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    srv = make_server()  # APPROVAL_TIMEOUT=3600: the sweep passes every 30 s
    run_id = srv.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    srv.wait_status(run_id, "awaiting_approval")
    with sqlite3.connect(srv.data_dir / "agent.db") as db:  # the deadline passed a second ago
        past = (datetime.now(UTC) - timedelta(seconds=1)).replace(tzinfo=None)
        db.execute("UPDATE runs SET decide_by = ? WHERE run_id = ?", (past.isoformat(" "), run_id))
    since = datetime.now(UTC).timestamp()
    late = srv.resume(run_id, "approve")
    assert late.status_code == 409 and late.json()["reason"] == "expired", late.text
    run = srv.wait_status(run_id, "completed")
    assert (run["outcome"], run["escalation_reason"]) == ("escalated", "expired"), run
    assert mutations(docker_client, app.container_id, since) == []


async def test_the_sweep_pages_through_every_overdue_run(tmp_path) -> None:
    repo = RunRepo.from_url(f"sqlite+aiosqlite:///{tmp_path}/agent.db")
    await repo.setup()
    past = (datetime.now(UTC) - timedelta(minutes=5)).replace(tzinfo=None)
    future = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None)

    def add(count: int, deadline: datetime) -> None:
        with sqlite3.connect(tmp_path / "agent.db") as db:
            db.executemany(
                "INSERT INTO runs (run_id, incident_id, service, status, created_at, updated_at, "
                "awaiting_since, decide_by, lease_generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                [
                    (
                        str(uuid.uuid4()),
                        "inc",
                        f"svc-{uuid.uuid4().hex}",
                        AWAITING,
                        utcnow(),
                        utcnow(),
                        utcnow(),
                        deadline.isoformat(" "),
                    )
                    for _ in range(count)
                ],
            )

    try:
        add(1234, past)
        add(7, future)
        seen: list[str] = []
        after = 0
        while page := await repo.overdue(after):
            assert len(page) <= 500
            seen += [run_id for run_id, _ in page]
            after = page[-1][1]
        assert len(seen) == len(set(seen)) == 1234
    finally:
        await repo.close()
