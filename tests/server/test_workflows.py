"""Workflows on a real service and a real engine: the operator's workflow (WORKFLOWS_DIR) is
chosen over the built-in one; a malformed one stops the start in one line (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.server.conftest import Server, alert_payload
from tests.server.test_trusted_actions import AUTONOMOUS, first_run
from tests.support.containers import Lab, wait_status
from tests.unit.test_workflows import OWN_CRASH

pytestmark = pytest.mark.docker


def test_the_operators_workflow_is_chosen_over_the_built_in_one(
    make_server: Callable[..., Server], lab: Lab, tmp_path: Path, docker_client
) -> None:
    own = tmp_path / "workflows"
    own.mkdir()
    (own / "careful.yaml").write_text(OWN_CRASH)
    app = lab.start(lab._name("pay"), labels={"team": "payments"})
    lab.exec(app, "touch", "/run/crash")
    wait_status(docker_client, app.name, "exited")
    srv = make_server(**AUTONOMOUS, WORKFLOWS_DIR=str(own))
    run = srv.wait_status(first_run(srv, alert_payload(app.name)), "completed")
    assert run["outcome"] == "resolved", run
    assert "Workflow careful-crash" in run["plan"]["why"]
    assert run["plan"]["steps"][0]["params"]["timeout"] == 30


def test_a_malformed_workflow_stops_the_start_in_one_line(tmp_path: Path) -> None:
    own = tmp_path / "workflows"
    own.mkdir()
    (own / "bad.yaml").write_text("id: bad\nwhen: {categories: [crash]}\nphases: [{name: a}]\n")
    result = Server(tmp_path / "srv", env={"WORKFLOWS_DIR": str(own)}).run_to_exit()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr + result.stdout
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "phases.0.steps" in lines[0], lines
    assert "Traceback" not in result.stderr + result.stdout
