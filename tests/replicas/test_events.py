"""Live events of a run from a replica that does not execute it: the node updates relayed through
PostgreSQL's LISTEN/NOTIFY, its changes of status, and the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.replicas.conftest import Database, holder
from tests.server.conftest import Server, alert_payload
from tests.server.test_runs_e2e import read_events
from tests.support.containers import Lab, wait_for

pytestmark = pytest.mark.docker


def test_events_from_the_other_replica_follow_the_run_to_its_end(
    replicas: Callable[..., list[Server]], db: Database, lab: Lab
) -> None:
    # No settle window: a parked run may be woken by either replica, and this test is about
    # events relayed from the replica that executes it.
    first, second = replicas(2, VALIDATE_SETTLE="0")
    app = lab.crashed()
    run_id = first.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    first.wait_status(run_id, "awaiting_approval")

    events: list[dict[str, Any]] = []
    reader = read_events(second, run_id, events)  # subscribed on the replica that will not run it
    wait_for(lambda: bool(events), timeout=30, what="the stream's first state")
    assert first.resume(run_id, "approve").status_code == 202
    reader.join(timeout=60)

    assert not reader.is_alive(), f"the stream did not end: {events}"
    owners = db.rows("SELECT owner FROM runs WHERE run_id = %s", run_id)
    assert holder([first, second], owners[0][0]) is None  # released after it finished
    assert "claimed run " + run_id not in second.logs()  # second never executed it
    kinds = [e["event"] for e in events]
    assert kinds[0] == "state" and kinds[-2:] == ["state", "end"], kinds
    assert events[0]["data"]["status"] == "awaiting_approval"
    relayed = [e["data"]["node"] for e in events if e["event"] == "update"]
    assert {"await_approval", "execute", "validate", "learn"} <= set(relayed), kinds
    final = events[-2]["data"]
    assert final["status"] == "completed" and final["outcome"] == "resolved"
    assert [a["operation"] for a in final["actions"]] == ["restart_service"]
    assert events[-1]["data"] == {"status": "completed", "outcome": "resolved"}
