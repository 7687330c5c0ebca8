"""The autonomy ladder (issue 14.5) on a real service and a real container: three approved
fixes of the same fault that held, then the fourth runs by itself; a fix that does not hold
demotes it. Promotions and demotions are audit rows; GET /patterns and `devops-agent patterns`
show them.

The same service crashes five times within minutes: the test turns off what would otherwise
stop that (REMEDIATION_COOLDOWN=0, CRASH_LOOP_WINDOW=0, a high MAX_ACTIONS_PER_SERVICE_PER_HOUR).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from tests.server.conftest import Server, alert_payload
from tests.server.test_trusted_actions import first_run
from tests.support.containers import Lab, wait_probe, wait_status

pytestmark = pytest.mark.docker
# Crashes two seconds after every start while /keep/crash exists (a host folder: it survives).
MAYBE_CRASHES = [
    "/bin/sh",
    "-c",
    "if [ -f /keep/crash ]; then (sleep 2; touch /run/crash) & fi; exec /app/run",
]
LADDER = {
    "SAFETY_MODE": "false",
    "AUTO_APPROVE_MAX_RISK": "low",  # a restart (medium) asks a person, until promoted
    "AUTONOMY_LADDER": "true",
    "AUTONOMY_PROMOTE_AFTER": "3",
    "REMEDIATION_COOLDOWN": "0",
    "CRASH_LOOP_WINDOW": "0",
    "MAX_ACTIONS_PER_SERVICE_PER_HOUR": "20",
    "VALIDATE_SETTLE": "4",
}


def ladder_changes(srv: Server) -> list[str]:
    rows = srv.get("/audit", params={"kind": "ladder"}).json()["rows"]
    return [str(r["detail"]["change"]) for r in rows]


def test_three_approved_fixes_then_the_fourth_by_itself_and_a_failure_demotes(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    app = lab.start(
        lab._name("ladder"),
        command=MAYBE_CRASHES,
        volumes={str(keep): {"bind": "/keep", "mode": "rw"}},
    )
    srv = make_server(**LADDER)

    def crash() -> str:
        wait_probe(app.health_url, 200, timeout=30)
        lab.exec(app, "touch", "/run/crash")
        wait_status(docker_client, app.name, "exited")
        return first_run(srv, alert_payload(app.name))

    for _ in range(3):
        run_id = crash()
        waiting = srv.wait_status(run_id, "awaiting_approval")
        assert waiting["approval_request"]["reason"] == "risk_above_auto", waiting
        assert srv.resume(run_id, "approve").status_code == 202
        assert srv.wait_status(run_id, "completed")["outcome"] == "resolved"
    (pattern,) = [p for p in srv.get("/patterns").json()["patterns"] if p["service"] == app.name]
    assert pattern["promoted"] is True and pattern["approved_held_in_a_row"] == 3, pattern
    assert ladder_changes(srv) == ["promoted"]

    fourth = srv.wait_status(crash(), "completed")
    assert fourth["outcome"] == "resolved" and fourth["approval"]["approver"] == "policy", fourth

    (keep / "crash").touch()  # from now on it crashes again two seconds after each start
    fifth = srv.wait_status(crash(), "completed")
    assert fifth["outcome"] == "escalated" and fifth["validation"]["held"] is False, fifth
    (pattern,) = [p for p in srv.get("/patterns").json()["patterns"] if p["service"] == app.name]
    assert pattern["promoted"] is False and pattern["approved_held_in_a_row"] == 0, pattern
    assert ladder_changes(srv) == ["promoted", "demoted"]

    cli = subprocess.run(
        [sys.executable, "-m", "devops_agent", "patterns"],
        cwd=srv.workdir,
        env=srv.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0 and app.name in cli.stdout and "restart_service" in cli.stdout
