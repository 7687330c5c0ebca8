"""End to end over HTTP: a broken container, an Alertmanager payload, a human decision."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import httpx
import pytest

from tests.server.conftest import Server, alert_payload, starts
from tests.support.containers import Lab, container_state, probe, wait_probe

pytestmark = pytest.mark.docker


def fire(server: Server, service: str, **kwargs: Any) -> str:
    response = server.webhook(alert_payload(service, **kwargs))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["ignored"] == 0
    [run] = body["runs"]
    assert run["service"] == service and run["deduplicated"] is False
    return str(run["run_id"])


def read_events(
    server: Server,
    run_id: str,
    into: list[dict[str, Any]],
    subscribed: threading.Event | None = None,
) -> threading.Thread:
    """Collect the run's Server-Sent Events in a thread until the stream ends; `subscribed` is
    set once the first event (the run's state, sent after the subscription) arrived."""

    def reader() -> None:
        with (
            server.client() as client,
            client.stream(
                "GET", f"/runs/{run_id}/events", timeout=httpx.Timeout(30, read=180)
            ) as response,
        ):
            assert response.status_code == 200
            event = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    into.append({"event": event, "data": json.loads(line.removeprefix("data: "))})
                    if subscribed is not None:
                        subscribed.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


def test_approve_restarts_the_container_and_resolves(
    server: Server, lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    since = time.time()
    run_id = fire(server, app.name)
    run = server.wait_status(run_id, "awaiting_approval")

    assert run["service"] == app.name and run["outcome"] is None
    assert run["incident_id"] and run["created_at"] and run["updated_at"]
    assert [a["fingerprint"] for a in run["alerts"]] and run["alerts"][0]["status"] == "firing"
    assert run["diagnosis"]["category"] == "crash"
    assert run["diagnosis"]["evidence"] and {"source", "summary"} <= set(
        run["diagnosis"]["evidence"][0]
    )
    assert [s["operation"] for s in run["plan"]["steps"]] == ["restart_service"]
    assert run["plan"]["requires_approval"] is True and run["approval"] is None
    assert run["actions"] == [] and run["validation"] is None and run["attempts"] == 0
    waiting = server.get("/approvals").json()["approvals"]
    assert run_id in [w["run_id"] for w in waiting]
    assert container_state(docker_client, app.name)["Status"] == "exited"

    events: list[dict[str, Any]] = []
    subscribed = threading.Event()
    reader = read_events(server, run_id, events, subscribed)
    assert subscribed.wait(60), "the event stream never started"
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda who: server.resume(run_id, "approve", comment=who), ["ana", "bo"])
        )
    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]

    run = server.wait_status(run_id, "completed", "failed")
    assert run["status"] == "completed" and run["outcome"] == "resolved", run
    assert run["approval"]["decision"] == "approve" and run["approval"]["approver"] == "admin"
    assert run["approval"]["comment"] in ("ana", "bo")  # exactly one of the two decisions won
    [action] = run["actions"]
    assert action["operation"] == "restart_service" and action["status"] == "succeeded"
    assert run["validation"]["healthy"] is True and run["attempts"] == 1
    assert container_state(docker_client, app.name)["Running"]
    wait_probe(app.health_url, 200, timeout=30)
    assert len(starts(docker_client, app.name, since)) == 1

    reader.join(timeout=60)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "state" and kinds[-1] == "end", kinds
    nodes = [e["data"]["node"] for e in events if e["event"] == "update"]
    assert {"await_approval", "execute", "validate", "learn"} <= set(nodes), nodes

    assert server.resume(run_id, "approve").status_code == 409  # not waiting any more
    history = server.get(f"/runs/{run_id}/history").json()["checkpoints"]
    assert history[0]["source"] == "input"
    assert [h["node"] for h in history if h["node"] in ("triage", "execute", "learn")] == [
        "triage",
        "execute",
        "learn",
    ]
    assert history == sorted(history, key=lambda h: h["step"])


def test_reject_leaves_the_container_down(
    server: Server, lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    since = time.time()
    run_id = fire(server, app.name)
    server.wait_status(run_id, "awaiting_approval")

    # A new alert for the same service joins the open run instead of starting another.
    joined = server.webhook(alert_payload(app.name)).json()
    assert joined["runs"] == [{"run_id": run_id, "service": app.name, "deduplicated": False}]

    answer = server.resume(run_id, "reject", comment="not now")
    assert answer.status_code == 202, answer.text
    run = server.wait_status(run_id, "completed", "failed")
    assert run["outcome"] == "rejected", run
    assert run["approval"]["decision"] == "reject" and run["approval"]["approver"] == "admin"
    assert run["actions"] == [] and len(run["alerts"]) == 2
    assert container_state(docker_client, app.name)["Status"] == "exited"
    assert probe(app.health_url, 1) is None
    assert starts(docker_client, app.name, since) == []
    listed = server.get("/runs", params={"service": app.name}).json()["runs"]
    assert [r["run_id"] for r in listed] == [run_id]


def test_duplicate_delivery_starts_no_second_run(server: Server, lab: Lab) -> None:
    app = lab.crashed()
    payload = alert_payload(app.name)
    first = server.webhook(payload)
    second = server.webhook(payload)
    assert first.status_code == second.status_code == 202
    [one], [two] = first.json()["runs"], second.json()["runs"]
    assert one["run_id"] == two["run_id"]
    assert one["deduplicated"] is False and two["deduplicated"] is True
    server.wait_status(one["run_id"], "awaiting_approval")
    third = server.webhook(payload).json()["runs"]  # Alertmanager's repeat_interval
    assert third == [{"run_id": one["run_id"], "service": app.name, "deduplicated": True}]
    listed = server.get("/runs", params={"service": app.name}).json()["runs"]
    assert [r["run_id"] for r in listed] == [one["run_id"]]
    assert len(listed[0]["alerts"]) == 1


def test_resolved_alert_supersedes_a_waiting_run(
    server: Server, lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    since = time.time()
    firing = alert_payload(app.name)
    run_id = fire(
        server,
        app.name,
        fingerprint=firing["alerts"][0]["fingerprint"],
        starts_at=firing["alerts"][0]["startsAt"],
    )
    server.wait_status(run_id, "awaiting_approval")

    resolved = alert_payload(
        app.name,
        status="resolved",
        fingerprint=firing["alerts"][0]["fingerprint"],
        starts_at=firing["alerts"][0]["startsAt"],
    )
    answer = server.webhook(resolved)
    assert answer.status_code == 202
    assert answer.json()["runs"] == [{"run_id": run_id, "service": app.name, "deduplicated": False}]
    run = server.wait_status(run_id, "completed", "failed")
    assert run["outcome"] == "superseded", run
    assert run["actions"] == []
    assert sorted(a["status"] for a in run["alerts"]) == ["firing", "resolved"]
    assert server.resume(run_id, "approve").status_code == 409
    assert container_state(docker_client, app.name)["Status"] == "exited"
    assert starts(docker_client, app.name, since) == []


def test_approvals_come_from_the_runs_table_a_page_at_a_time(
    make_server: Callable[..., Server], lab: Lab
) -> None:
    server = make_server()
    run_ids = [fire(server, lab.crashed().name) for _ in range(3)]
    for run_id in run_ids:
        server.wait_status(run_id, "awaiting_approval")
    # What a waiting run asks is kept on its row: the list does not read the checkpoints, so it
    # is the same after they are gone (10,000 waiting runs do not mean 10,000 checkpoint reads).
    with sqlite3.connect(server.data_dir / "agent.db") as db:
        db.executemany("DELETE FROM checkpoints WHERE thread_id = ?", [(r,) for r in run_ids])
        # As if the first run had gone back to waiting (a second attempt) after the others.
        db.execute(
            "UPDATE runs SET awaiting_since = '2999-01-01T00:00:00+00:00' WHERE run_id = ?",
            (run_ids[0],),
        )

    first = server.get("/approvals", params={"limit": 2}).json()
    assert len(first["approvals"]) == 2 and first["next"]
    second = server.get("/approvals", params={"limit": 2, "cursor": first["next"]}).json()
    assert second["next"] is None
    listed = first["approvals"] + second["approvals"]
    assert [a["run_id"] for a in listed] == [*run_ids[1:], run_ids[0]]  # longest waiting first
    for entry in listed:
        assert entry["plan"]["steps"][0]["operation"] == "restart_service"
        assert entry["diagnosis"]["category"] == "crash"
        assert entry["deadline"] and "SAFETY_MODE" in entry["why"] and entry["waiting_since"]
    assert server.get("/approvals", params={"cursor": "x"}).status_code == 422
    assert server.get("/approvals", params={"limit": 0}).status_code == 422
