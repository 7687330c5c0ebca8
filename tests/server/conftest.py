"""A real `devops-agent serve` process per test module (or per test), and helpers to drive it.

The server runs as a subprocess on a free port, with its own DATA_DIR and working directory (so
no `.env` of the developer leaks in), and talks to the real Docker engine.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from devops_agent.config import Settings
from tests.support.containers import free_port

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager-0.25"
TOKEN = "test-api-token-" + secrets.token_hex(8)
WEBHOOK_TOKEN = "test-webhook-token-" + secrets.token_hex(8)
# Every setting of the agent (but DOCKER_HOST, which says where the engine is): a developer's own
# environment must not leak into the servers the tests start.
SETTINGS_PREFIXES = tuple(name.upper() for name in Settings.model_fields if name != "docker_host")
DEADLINE = 120.0  # generous: polling ends as soon as the condition holds


class Server:
    """One `python -m devops_agent serve` process; restartable on the same DATA_DIR."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.port = free_port()
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"
        self.token = self.extra_env.get("AGENT_API_TOKEN", TOKEN)
        self.webhook_token = self.extra_env.get("WEBHOOK_TOKEN", WEBHOOK_TOKEN)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith(SETTINGS_PREFIXES)}
        env.update(
            {
                "DATA_DIR": str(self.data_dir),
                "API_HOST": "127.0.0.1",
                "API_PORT": str(self.port),
                "AGENT_API_TOKEN": TOKEN,
                "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
                "SAFETY_MODE": "true",
                "REASONER": "rules",
                "LOG_LEVEL": "INFO",
                "VALIDATE_TIMEOUT": "30",
                "VALIDATE_SETTLE": "1",  # a short window; the tests of the window set theirs
                "APPROVAL_TIMEOUT": "3600",
                "MONITORING_INTERVAL": "3600",
                "WATCH_EVENTS": "false",  # tests of the events watcher turn it on (issue 20)
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        env.update(self.extra_env)
        return {k: v for k, v in env.items() if v != ""}

    def start(self) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devops_agent", "serve"],
            cwd=self.workdir,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + 120  # a loaded machine starts slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer /health:\n{self.logs()}")

    def run_to_exit(self) -> subprocess.CompletedProcess[str]:
        """`serve` in the foreground until it exits (start-up failures), its output captured."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [sys.executable, "-m", "devops_agent", "serve"],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- HTTP helpers ---------------------------------------------------------------------

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.post(path, **kwargs)

    def webhook(self, payload: Any, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.webhook_token}"}
        return httpx.post(
            f"{self.url}/webhook/alerts", json=payload, headers=headers, timeout=30, trust_env=False
        )

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.get(f"/runs/{run_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def wait_run(
        self, run_id: str, until: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        run = self.run(run_id)
        while not until(run):
            if time.monotonic() > deadline:
                raise AssertionError(f"run never became {what}: {json.dumps(run)[:3000]}")
            time.sleep(0.2)
            run = self.run(run_id)
        return run

    def wait_status(self, run_id: str, *statuses: str) -> dict[str, Any]:
        return self.wait_run(run_id, lambda r: r["status"] in statuses, "/".join(statuses))

    def resume(
        self, run_id: str, decision: str, token: str | None = None, **extra: Any
    ) -> httpx.Response:
        """Decide as the user of `token` (default: AGENT_API_TOKEN, the user `admin`)."""
        body = {"decision": decision, **extra}
        with self.client(token) as client:
            return client.post(f"/runs/{run_id}/resume", json=body)

    def add_user(self, name: str, role: str, *extra: str) -> str:
        """`devops-agent users add NAME --role ROLE` on this server's database: the token."""
        done = subprocess.run(
            [sys.executable, "-m", "devops_agent", "users", "add", name, "--role", role, *extra],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,  # a limit, not a measure: a loaded machine imports slowly
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def alert_payload(
    service: str,
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: str | None = None,
) -> dict[str, Any]:
    """The captured Alertmanager payload, re-aimed at `service` with its own alert identity."""
    data = copy.deepcopy(fixture("firing.json" if status == "firing" else "resolved.json"))
    fingerprint = fingerprint or secrets.token_hex(8)
    starts_at = starts_at or datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    for block in (data["commonLabels"], data["groupLabels"]):
        block["service"] = service
    for alert in data["alerts"]:
        alert["labels"].update({"service": service, "job": service})
        alert["annotations"]["summary"] = f"{service} is down"
        alert["fingerprint"] = fingerprint
        alert["startsAt"] = starts_at
    return data


def starts(client: docker.DockerClient, name: str, since: float) -> list[dict[str, Any]]:
    """The engine's own record of `start` and `restart` events for a container since `since`."""
    until = time.time() + 1
    events = client.events(
        since=int(since), until=int(until) + 1, decode=True, filters={"container": name}
    )
    return [
        e
        for e in events
        if e.get("Type") == "container"
        and e.get("Action") in ("start", "restart")
        and int(e.get("timeNano", 0)) >= int(since * 1e9)
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server shared by the tests of one module (each test uses its own containers/alerts)."""
    srv = Server(tmp_path_factory.mktemp("server")).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Servers with their own settings, stopped after the test."""
    made: list[Server] = []

    def make(**env: str) -> Server:
        srv = Server(tmp_path / f"server{len(made)}", env=env)
        made.append(srv)
        return srv.start()

    yield make
    for srv in made:
        srv.stop()
