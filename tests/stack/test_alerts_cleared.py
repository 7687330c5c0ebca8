"""With ALERTMANAGER_URL, a run whose fix held records whether Alertmanager still has its
alerts firing (`validation.alerts_cleared`); it is recorded, it does not decide `resolved`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.stack.conftest import Stack, wait
from tests.support.containers import Lab

pytestmark = pytest.mark.docker


def test_alerts_still_firing_in_alertmanager_are_recorded_not_deciding(
    make_stack: Callable[..., Stack], lab: Lab
) -> None:
    stack = make_stack(
        SAFETY_MODE="false",
        AUTO_APPROVE_MAX_RISK="medium",
        VALIDATE_SETTLE="2",
        ALERTMANAGER_URL="{alertmanager_url}",
    )
    app = lab.crashed()
    # An alert as a client of Alertmanager posts it: Alertmanager sends it to the agent, and
    # keeps it firing (no endsAt) while the agent fixes the service.
    posted = httpx.post(
        f"{stack.spec.alertmanager_url}/api/v2/alerts",
        json=[
            {"labels": {"alertname": "ServiceDown", "service": app.name, "severity": "critical"}}
        ],
        timeout=10,
        trust_env=False,
    )
    assert posted.status_code == 200, posted.text
    [firing] = wait(lambda: stack.alertmanager_alerts(app.name), "the alert in Alertmanager")

    def finished() -> dict[str, Any] | None:
        runs = stack.server.get("/runs", params={"service": app.name}).json()["runs"]
        return runs[0] if runs and runs[0]["status"] == "completed" else None

    run = wait(finished, "the run to finish")
    assert run["outcome"] == "resolved", run
    assert run["alerts"][0]["fingerprint"] == firing["fingerprint"]
    assert run["validation"]["held"] is True and run["validation"]["alerts_cleared"] is False
