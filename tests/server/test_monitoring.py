"""The monitoring loop: a failed probe becomes an alert through the intake, a recovery a resolve."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.server.conftest import DEADLINE, Server
from tests.support.containers import Lab

pytestmark = pytest.mark.docker


def test_failed_probe_opens_a_run_and_recovery_resolves(
    make_server: Callable[..., Server], lab: Lab
) -> None:
    app = lab.crashed()
    server = make_server(TARGET_SERVICES=f"{app.name}={app.health_url}")
    assert server.get("/monitoring/status").json()["running"] is True

    deadline = time.monotonic() + DEADLINE
    runs: list[dict[str, object]] = []
    while not runs and time.monotonic() < deadline:
        runs = server.get("/runs", params={"service": app.name}).json()["runs"]
        time.sleep(0.2)
    [run] = runs
    run_id = str(run["run_id"])
    waiting = server.wait_status(run_id, "awaiting_approval")
    assert waiting["alerts"][0]["labels"]["alertname"] == "HealthProbeFailed"

    cycle = server.post("/monitoring/cycle").json()
    assert cycle["alerts_sent"] == 1
    assert cycle["intake"]["runs"] == [
        {"run_id": run_id, "service": app.name, "deduplicated": True}
    ]
    [target] = cycle["targets"]
    assert target["healthy"] is False and target["failing_since"]

    stopped = server.post("/control/stop-monitoring").json()
    assert stopped["stopped"] is True and stopped["running"] is False
    started = server.post("/control/start-monitoring").json()
    assert started["started"] is True and started["running"] is True
    assert server.post("/control/start-monitoring").json()["started"] is False
    # From here on only the cycles this test asks for run: each one's alerts are known.
    assert server.post("/control/stop-monitoring").json()["stopped"] is True

    assert server.resume(run_id, "approve").status_code == 202
    assert server.wait_status(run_id, "completed")["outcome"] == "resolved"

    recovered = server.post("/monitoring/cycle").json()
    assert recovered["targets"][0]["healthy"] is True and recovered["alerts_sent"] == 1
    # the resolution is kept on the finished run that its firing alert started
    assert recovered["intake"] == {
        "runs": [{"run_id": run_id, "service": app.name, "deduplicated": False}],
        "ignored": 0,
    }
    assert server.post("/monitoring/cycle").json()["alerts_sent"] == 0
    assert len(server.get("/runs", params={"service": app.name}).json()["runs"]) == 1
