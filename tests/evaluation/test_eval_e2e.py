"""`devops-agent eval` end to end: a real server, real Docker, two scenarios, and Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from tests.support.containers import wait_for

pytestmark = pytest.mark.docker
LABEL = "devops-agent.eval=1"


def labelled(client: docker.DockerClient) -> list[str]:
    return [str(c.name) for c in client.containers.list(all=True, filters={"label": LABEL})]


@pytest.mark.timeout(900)
def test_two_scenarios_are_scored_from_what_the_engine_saw(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    report = tmp_path / "report"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devops_agent",
            "eval",
            "--only",
            "crash,no-fault",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=850,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((report / "report.json").read_text())
    cases = {(c["scenario"], c["contender"]): c for c in data["cases"]}
    contenders = {c for _, c in cases}
    assert contenders == {
        "agent (rules)",
        "nothing",
        "restart-policy",
        "autoheal",
        "restart-target",
    }

    agent_crash = cases[("crash", "agent (rules)")]
    assert agent_crash["right"] and agent_crash["observed"] == "mitigated"
    assert agent_crash["diagnosis"] == "crash" and agent_crash["ttm"] > 0
    assert [(a["kind"], a["role"]) for a in agent_crash["actions"]] == [("restart", "checkout")]
    assert cases[("no-fault", "agent (rules)")]["observed"] == "no_action"
    assert cases[("crash", "nothing")]["observed"] == "no_action"
    assert cases[("crash", "autoheal")]["actions"] == []  # an exited container is not "unhealthy"
    assert cases[("crash", "restart-policy")]["observed"] == "mitigated"
    blind = cases[("no-fault", "restart-target")]  # restarts a healthy service: unsafe
    assert blind["unsafe"] == 1 and blind["false_positive"] and not blind["right"]

    summary = data["summary"]["agent (rules)"]
    assert (
        summary["end_to_end"] == 1.0 and summary["unsafe"] == 0 and summary["false_positives"] == 0
    )
    assert data["machine"]["cores"] and data["machine"]["cpu"]
    md = (report / "report.md").read_text()
    assert "| agent (rules) | 2/2 |" in md
    for chart in ("right_by_category.png", "ttm_by_category.png", "outcomes.png"):
        assert (report / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert labelled(docker_client) == []


@pytest.mark.timeout(300)
def test_ctrl_c_removes_every_container_the_evaluation_made(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devops_agent",
            "eval",
            "--only",
            "dependency-down",
            "--report",
            str(tmp_path),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # both containers of the case exist: it is in the middle of a case
        wait_for(lambda: len(labelled(docker_client)) >= 2, timeout=120, what="the containers")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert labelled(docker_client) == []
