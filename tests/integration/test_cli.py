"""`devops-agent run-alert FILE.json` in the foreground, on a captured Alertmanager payload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.containers import Lab, probe

pytestmark = pytest.mark.docker
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager-0.25"


def payload_for(tmp_path: Path, service: str) -> Path:
    """The captured firing.json, with its service label pointed at a real container."""
    data = json.loads((FIXTURES / "firing.json").read_text())
    for alert in data["alerts"]:
        alert["labels"]["service"] = service
    path = tmp_path / "alert.json"
    path.write_text(json.dumps(data))
    return path


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "VALIDATE_TIMEOUT": "15",
        "COLUMNS": "200",
    }
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "devops_agent", "run-alert", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_approve_restarts_and_exits_0(tmp_path: Path, lab: Lab) -> None:
    app = lab.crashed()
    proc = cli(tmp_path, str(payload_for(tmp_path, app.name)), "--approve", "--approver", "ana")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for node in ("triage", "root_cause", "plan", "approve", "execute", "validate", "learn"):
        assert node in proc.stdout
    assert "approval needed" in proc.stdout and "approve by ana" in proc.stdout
    assert "outcome: resolved" in proc.stdout and probe(app.health_url) == 200
    assert (tmp_path / "data" / "agent.db").exists()


def test_reject_leaves_it_and_exits_1(tmp_path: Path, lab: Lab) -> None:
    app = lab.crashed()
    proc = cli(tmp_path, str(payload_for(tmp_path, app.name)), "--reject")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "outcome: rejected" in proc.stdout and probe(app.health_url) is None


def test_no_terminal_and_no_flag_rejects(tmp_path: Path, lab: Lab) -> None:
    app = lab.crashed()
    proc = cli(tmp_path, str(payload_for(tmp_path, app.name)))
    assert proc.returncode == 1 and "pass --approve or --reject" in proc.stdout
    assert probe(app.health_url) is None


def test_captured_fixture_as_is_escalates_unknown_target(tmp_path: Path, docker_client) -> None:
    proc = cli(tmp_path, str(FIXTURES / "firing.json"))
    assert proc.returncode == 1 and "unknown target" in proc.stdout


def test_resolved_fixture_needs_nothing(tmp_path: Path) -> None:
    proc = cli(tmp_path, str(FIXTURES / "resolved.json"))
    assert proc.returncode == 0 and "outcome: superseded" in proc.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"status": "firing"}', "alerts"),
        ('{"alerts": [{}]}', "status"),
    ],
)
def test_bad_payload_file_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    proc = cli(tmp_path, str(path))
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
