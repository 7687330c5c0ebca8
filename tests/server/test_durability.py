"""What survives the process: a SIGKILL while a run waits, and approvals that time out."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker
import pytest

from tests.server.conftest import DEADLINE, Server, alert_payload, starts
from tests.support.containers import Lab, container_state, wait_probe

pytestmark = pytest.mark.docker


def test_sigkill_while_waiting_then_resume_acts_once(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    server = make_server()
    app = lab.crashed()
    since = time.time()
    payload = alert_payload(app.name)
    run_id = server.webhook(payload).json()["runs"][0]["run_id"]
    before = server.wait_status(run_id, "awaiting_approval")

    server.kill()
    server.start()  # same DATA_DIR, same port

    after = server.run(run_id)
    assert after["status"] == "awaiting_approval"
    assert after["diagnosis"] == before["diagnosis"] and after["plan"] == before["plan"]
    assert run_id in [a["run_id"] for a in server.get("/approvals").json()["approvals"]]
    # The dedupe records survived too: Alertmanager's retry after the crash starts nothing.
    again = server.webhook(payload).json()["runs"]
    assert again == [{"run_id": run_id, "service": app.name, "deduplicated": True}]

    assert server.resume(run_id, "approve").status_code == 202
    run = server.wait_status(run_id, "completed", "failed")
    assert run["outcome"] == "resolved", run
    assert [a["status"] for a in run["actions"]] == ["succeeded"]
    wait_probe(app.health_url, 200, timeout=30)
    assert len(starts(docker_client, app.name, since)) == 1

    # A second crash and restart after the end changes nothing.
    server.kill()
    server.start()
    assert server.run(run_id)["status"] == "completed"
    assert len(starts(docker_client, app.name, since)) == 1


@pytest.mark.parametrize("point", ["before_resume", "after_begin_step", "after_backend_call"])
def test_sigkill_after_the_decision_keeps_it_and_acts_once(
    make_server: Callable[..., Server],
    lab: Lab,
    docker_client: docker.DockerClient,
    point: str,
) -> None:
    """The decision is stored with the 202. Killed where `point` says (before the graph got
    the decision, between the ledger and the engine, after the engine acted), the next process
    continues the run under the same decision: one start, no second request."""
    server = make_server(DEVOPS_AGENT_FAULTS=f"{point}=kill")
    app = lab.crashed()
    since = time.time()
    run_id = server.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    server.wait_status(run_id, "awaiting_approval")
    assert server.resume(run_id, "approve").status_code == 202
    assert server.proc is not None
    server.proc.wait(timeout=DEADLINE)  # killed at the point
    server.extra_env.pop("DEVOPS_AGENT_FAULTS")
    server.start()
    run = server.wait_status(run_id, "completed", "failed")
    assert (run["outcome"], run["approval"]["approver"]) == ("resolved", "admin"), run
    assert [a["status"] for a in run["actions"]] == ["succeeded"], run
    assert len(starts(docker_client, app.name, since)) == 1
    assert container_state(docker_client, app.name)["Running"]


class Receiver(ThreadingHTTPServer):
    """A Slack-compatible webhook receiver that keeps what it was sent (also what it answers
    `status` other than 2xx to, as a receiver that is down)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                outer.received.append(json.loads(self.rfile.read(length)))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


def test_approval_timeout_escalates_as_expired(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    receiver = Receiver()
    server = make_server(APPROVAL_TIMEOUT="2", NOTIFY_WEBHOOK_URL=receiver.url)
    app = lab.crashed()
    run_id = server.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    run = server.wait_status(run_id, "completed", "failed")
    assert run["outcome"] == "escalated", run
    assert run["approval"]["decision"] == "expired"
    assert "APPROVAL_TIMEOUT" in run["escalation"]
    assert run["actions"] == []
    assert container_state(docker_client, app.name)["Status"] == "exited"
    assert server.resume(run_id, "approve").status_code == 409

    deadline = time.monotonic() + DEADLINE
    while len(receiver.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    receiver.shutdown()
    asking, escalated = receiver.received[:2]
    assert asking["kind"] == "approval_request" and asking["run_id"] == run_id
    assert asking["resume_url"] == f"{server.url}/runs/{run_id}/resume"
    assert app.name in asking["text"] and "restart_service" in asking["text"]
    assert escalated["run_id"] == run_id and escalated["outcome"] == "escalated"
