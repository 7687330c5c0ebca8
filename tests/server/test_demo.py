"""`devops-agent demo`: against a real `devops-agent serve` and the real Docker engine, the demo
breaks a service of its own, the agent's run ends resolved, and the service answers again."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from devops_agent.config import Settings
from tests.server.conftest import Server
from tests.support.containers import free_port, probe, wait_for

pytestmark = pytest.mark.docker
SETTINGS = tuple(name.upper() for name in Settings.model_fields if name != "docker_host")
DEMO_LABEL = "devops-agent.demo=1"


def demo(workdir: Path, *args: str, env: dict[str, str], stdin: int | None = None) -> Demo:
    """`devops-agent demo ARGS` in `workdir`, none of the developer's settings leaking in."""
    workdir.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith(SETTINGS)}
    proc = subprocess.run(
        [sys.executable, "-m", "devops_agent", "demo", *args],
        cwd=workdir,
        env={**clean, "DATA_DIR": str(workdir / "data"), **env},
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Demo(proc)


class Demo:
    """What one `devops-agent demo` printed, and what it is about."""

    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.proc = proc
        self.out = proc.stdout
        started = re.search(r"started (demo-[a-z]+-[0-9a-f]{6})\b.*healthy at (\S+)", self.out)
        run = re.search(r"run ([0-9a-f-]{36})", self.out)
        self.service = started[1] if started else ""
        self.health_url = started[2] if started else ""
        self.run_id = run[1] if run else ""

    def __repr__(self) -> str:
        return f"exit {self.proc.returncode}\n{self.out}\n{self.proc.stderr}"


@pytest.fixture
def demo_containers(docker_client: docker.DockerClient) -> Iterator[Callable[[], list[str]]]:
    """The names of the demo's containers (any run); all removed after the test."""

    def names() -> list[str]:
        found = docker_client.containers.list(all=True, filters={"label": DEMO_LABEL})
        return sorted(str(c.name) for c in found)

    yield names
    for container in docker_client.containers.list(all=True, filters={"label": DEMO_LABEL}):
        container.remove(force=True, v=True)


def _resolved(server: Server, shown: Demo, docker_client: docker.DockerClient) -> None:
    assert shown.proc.returncode == 0, shown
    assert "approval needed" in shown.out and "outcome: resolved" in shown.out, shown
    for node in ("triage", "root_cause", "plan", "execute", "validate", "learn"):
        assert re.search(rf"^\s+{node} ", shown.out, re.M), (node, shown)
    run = server.run(shown.run_id)
    assert (run["status"], run["outcome"]) == ("completed", "resolved"), run
    assert run["service"] == shown.service
    assert docker_client.containers.get(shown.service).status == "running"
    assert probe(shown.health_url) == 200


@pytest.mark.parametrize("fault", ["crash", "dependency", "hang", "oom"])
def test_demo_approve_ends_resolved(
    fault: str,
    server: Server,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    demo_containers: Callable[[], list[str]],
) -> None:
    env = {"WEBHOOK_TOKEN": server.webhook_token}  # as the service has it
    args = ("--approve", "--url", server.url, "--token", server.token)
    shown = demo(tmp_path, *args, *(("--fault", fault) if fault != "crash" else ()), env=env)
    _resolved(server, shown, docker_client)
    expected = {
        "crash": "crash",
        "dependency": "dependency_failure",
        "hang": "hang",
        "oom": "memory_exhaustion",
    }[fault]
    assert server.run(shown.run_id)["diagnosis"]["category"] == expected
    if fault == "dependency":  # the agent started the database, not the caller
        (action,) = server.run(shown.run_id)["actions"]
        assert action["target"].startswith("demo-db-") and action["target"] != shown.service


def test_demo_twice_with_the_token_of_the_services_data_dir(
    make_server: Callable[..., Server],
    tmp_path: Path,
    docker_client: docker.DockerClient,
    demo_containers: Callable[[], list[str]],
) -> None:
    server = make_server(AGENT_API_TOKEN="")  # it generates DATA_DIR/api-token
    env = {
        "DATA_DIR": str(server.data_dir),
        "DEVOPS_AGENT_URL": server.url,
        "WEBHOOK_TOKEN": server.webhook_token,
    }
    server.token = (server.data_dir / "api-token").read_text().strip()
    first = demo(tmp_path / "a", "--approve", env=env)
    second = demo(tmp_path / "b", "--approve", env=env)
    for shown in (first, second):
        _resolved(server, shown, docker_client)
    assert first.service != second.service and first.run_id != second.run_id
    assert server.token not in first.out + second.out  # the curl line refers to it, never shows it
    assert f"$(cat {server.data_dir / 'api-token'})" in first.out


def test_demo_left_to_a_person_then_the_printed_curl_line_decides_it(
    server: Server, tmp_path: Path, demo_containers: Callable[[], list[str]]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(server.token)
    env = {"WEBHOOK_TOKEN": server.webhook_token, "DEVOPS_AGENT_URL": server.url}
    env["DATA_DIR"] = str(tmp_path / "svc")
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "api-token").write_text(server.token)
    shown = demo(tmp_path / "run", env=env)  # no terminal, no --approve: nothing is decided
    assert shown.proc.returncode == 1, shown
    assert "approval needed" in shown.out and "deadline:" in shown.out and "why:" in shown.out
    assert server.run(shown.run_id)["status"] == "awaiting_approval"
    lines = shown.out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("curl -X POST"))
    curl = "\n".join(lines[start : start + 2])
    answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
    assert '"decision":"approve"' in answer.stdout, answer
    run = server.wait_status(shown.run_id, "completed")
    assert run["outcome"] == "resolved" and run["approval"]["approver"] == "admin"
    wait_for(lambda: probe(shown.health_url) == 200, timeout=30, what="the service to answer")


def test_a_y_at_the_prompt_approves(
    server: Server,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    demo_containers: Callable[[], list[str]],
) -> None:
    primary, secondary = os.openpty()
    os.write(primary, b"y\n")  # typed ahead: the terminal keeps it until the prompt reads it
    try:
        env = {"WEBHOOK_TOKEN": server.webhook_token}
        shown = demo(
            tmp_path, "--url", server.url, "--token", server.token, env=env, stdin=secondary
        )
    finally:
        os.close(secondary)
        os.close(primary)
    _resolved(server, shown, docker_client)


def test_demo_starts_a_service_when_none_answers_and_cleanup_removes_it_all(
    tmp_path: Path, docker_client: docker.DockerClient, demo_containers: Callable[[], list[str]]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {"DEVOPS_AGENT_URL": url, "AGENT_API_TOKEN": "not-the-background-service-token"}
    first = demo(tmp_path, "--approve", env=env)
    assert first.proc.returncode == 0, first
    assert "no service answers" in first.out and "in the background" in first.out
    pid = int(re.findall(r"pid (\d+)", first.out)[0])
    second = demo(tmp_path, "--approve", "--fault", "dependency", env=env)
    assert second.proc.returncode == 0, second
    assert "no service answers" not in second.out  # the first one's service answered
    assert first.service in demo_containers() and second.service in demo_containers()
    assert (tmp_path / "data" / "demo" / "service" / "agent.db").exists()

    cleaned = demo(tmp_path, "--cleanup", env=env)
    assert cleaned.proc.returncode == 0, cleaned
    assert demo_containers() == []
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert not (tmp_path / "data" / "demo").exists()
    assert probe(f"{url}/health", timeout=1) is None
    again = demo(tmp_path, "--cleanup", env=env)  # nothing left: still fine
    assert again.proc.returncode == 0 and "removed 0 container(s)" in again.out


def test_unknown_url_without_a_service_is_one_line_and_exit_2(tmp_path: Path) -> None:
    shown = demo(tmp_path, "--url", "http://192.0.2.1:1", env={})
    assert shown.proc.returncode == 2, shown
    lines = shown.proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "192.0.2.1" in lines[0] and "Traceback" not in shown.proc.stderr
