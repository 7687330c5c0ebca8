"""Fair scheduling on a real server (fake backend): a steady trickle of alerts does not hold the
workers back; only requests in flight do."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.server.conftest import DEADLINE, Server, alert_payload
from tests.support.containers import wait_for

pytestmark = pytest.mark.docker

WORKERS = 4
BACKLOG = 600  # runs queued at once: enough for the workers to be seen busy together


def backlog(tag: str) -> dict[str, Any]:
    """One notification of BACKLOG alerts, each for its own (unknown) service: BACKLOG runs."""
    payload = alert_payload(f"backlog-{tag}-0")
    template = payload["alerts"][0]
    payload["alerts"] = [
        {
            **template,
            "labels": {**template["labels"], "service": f"backlog-{tag}-{i}", "job": "backlog"},
            "fingerprint": f"{tag}{i:08x}",
        }
        for i in range(BACKLOG)
    ]
    return payload


class Trickle(threading.Thread):
    """One alert, each for a new service (a run each), every `interval` seconds until stopped."""

    def __init__(self, srv: Server, interval: float):
        super().__init__(daemon=True)
        self.srv = srv
        self.interval = interval
        self.sent = 0
        self.codes: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        tag = secrets.token_hex(3)
        headers = {"Authorization": f"Bearer {self.srv.webhook_token}"}
        with httpx.Client(base_url=self.srv.url, headers=headers, trust_env=False) as client:
            while not self.stop.wait(self.interval):
                service = f"trickle-{tag}-{self.sent}"
                answer = client.post("/webhook/alerts", json=alert_payload(service))
                self.codes.add(answer.status_code)
                self.sent += 1


def test_a_steady_trickle_leaves_every_worker_running(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server(INFRA_BACKEND="fake", MAX_CONCURRENT_RUNS=str(WORKERS))
    trickle = Trickle(srv, interval=0.05)  # twice the rate the issue names: one per 50 ms
    trickle.start()
    try:
        wait_for(lambda: trickle.sent >= 20, timeout=60, what="the trickle to be under way")
        answer = srv.webhook(backlog(secrets.token_hex(3)))
        assert answer.status_code == 202, answer.text
        most = 0
        deadline = time.monotonic() + DEADLINE
        with srv.client() as api:
            while time.monotonic() < deadline:
                status = api.get("/status")
                assert status.status_code == 200, status.text
                runs = status.json()["runs"]
                most = max(most, runs["running"])
                if most >= WORKERS or runs["queued"] == 0:
                    break
                time.sleep(0.02)  # within the API's rate limit
        assert most == WORKERS, f"at most {most} of {WORKERS} workers ran at once"
    finally:
        trickle.stop.set()
        trickle.join(timeout=30)
    assert trickle.codes == {202}
    total = BACKLOG + trickle.sent

    def drained() -> dict[str, int] | None:
        runs: dict[str, int] = srv.get("/status").json()["runs"]
        return runs if runs["queued"] == runs["running"] == 0 else None

    final = wait_for(drained, timeout=240, interval=0.5, what="every run to end")
    assert final["completed"] == total, final
