"""The service on PostgreSQL: the same intake, dedupe, approval race and restart, one DATABASE_URL."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from tests.conftest import PG_AUDIT_KEY
from tests.server.conftest import Server, alert_payload, fixture, starts
from tests.support.containers import Lab, wait_probe

pytestmark = pytest.mark.docker


def test_runs_on_postgres(
    make_server: Callable[..., Server],
    pg_url: str,
    lab: Lab,
    docker_client: docker.DockerClient,
) -> None:
    server = make_server(DATABASE_URL=pg_url, AUDIT_KEY=PG_AUDIT_KEY)
    captured = server.webhook(fixture("firing.json")).json()["runs"][0]
    assert server.wait_status(captured["run_id"], "completed")["outcome"] == "escalated"

    app = lab.crashed()
    since = time.time()
    payload = alert_payload(app.name)
    run_id = server.webhook(payload).json()["runs"][0]["run_id"]
    assert server.webhook(payload).json()["runs"][0] == {
        "run_id": run_id,
        "service": app.name,
        "deduplicated": True,
    }
    server.wait_status(run_id, "awaiting_approval")
    server.kill()
    server.start()
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda d: server.resume(run_id, d), ["approve", "reject"]))
    assert sorted(a.status_code for a in answers) == [202, 409]
    run = server.wait_status(run_id, "completed", "failed")
    won = "approve" if answers[0].status_code == 202 else "reject"
    assert run["approval"]["decision"] == won
    assert run["outcome"] == ("resolved" if won == "approve" else "rejected"), run
    if won == "approve":
        wait_probe(app.health_url, 200, timeout=30)
    assert len(starts(docker_client, app.name, since)) == (1 if won == "approve" else 0)
    assert server.get("/status").json()["database"] == {"kind": "postgresql", "ok": True}


def test_text_postgres_cannot_hold_is_a_4xx_not_a_5xx(
    make_server: Callable[..., Server], pg_url: str
) -> None:
    server = make_server(DATABASE_URL=pg_url, AUDIT_KEY=PG_AUDIT_KEY)
    assert server.get("/runs/abc%00def").status_code == 404
    assert server.get("/runs/" + "x" * 500).status_code == 404
    assert server.post("/runs/abc%00def/resume", json={"decision": "approve"}).status_code == 404
    assert server.get("/runs", params={"service": "web\x00"}).status_code == 422
    assert server.get("/health").status_code == 200
