"""Two replicas watch one engine (issue 20): both see the crash, both send its alert, and the
alert's identity (the engine's ID, the container, its FinishedAt) makes it one run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.replicas.conftest import Database
from tests.server.conftest import Server
from tests.server.test_events_watch import AUTONOMOUS, WATCH, crash, one_run, watching
from tests.support.containers import Lab, wait_for

pytestmark = pytest.mark.docker


def test_two_replicas_turn_one_event_into_one_run(
    replicas: Callable[..., list[Server]], db: Database, lab: Lab
) -> None:
    servers = replicas(2, **AUTONOMOUS, WATCH_EVENTS="true")
    for srv in servers:
        watching(srv)
    app = lab.start(lab._name("replicated"), labels=WATCH)
    crash(lab, app)
    for srv in servers:  # each replica's watcher handled the event and sent its alert
        wait_for(lambda s=srv: s.get("/status").json()["watcher"]["alerts_sent"] >= 1, timeout=120)

    run = servers[0].wait_status(one_run(servers[0], app.name), "completed")
    assert run["outcome"] == "resolved", run
    assert db.value("SELECT count(*) FROM runs WHERE service = %s", app.name) == 1
    firing = db.rows(
        "SELECT fingerprint, starts_at FROM alerts WHERE service = %s AND status = 'firing'",
        app.name,
    )
    assert len(firing) == 1, firing  # the second replica's copy was a duplicate
    assert [a["operation"] for a in run["actions"]] == ["restart_service"]
