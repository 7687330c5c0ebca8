"""Helpers of the hostile-input suite: post raw bodies, wait for runs, read the engine's events."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import docker
import httpx

from tests.security.payloads import Case
from tests.server.conftest import Server

# What the Docker engine records when something acts on a container.
ACTING_EVENTS = frozenset(
    {
        "start",
        "restart",
        "kill",
        "stop",
        "die",
        "pause",
        "unpause",
        "destroy",
        "update",
        "exec_start",
    }
)
FINISHED = ("completed", "failed")


@dataclass
class Tally:
    tried: int = 0
    rejected_cleanly: int = 0
    accepted: int = 0
    unexpected: list[str] = field(default_factory=list)
    codes: Counter[int] = field(default_factory=Counter)

    def line(self) -> str:
        return (
            f"payloads tried {self.tried}, rejected cleanly (4xx) {self.rejected_cleanly}, "
            f"accepted (202) {self.accepted}, unexpected {len(self.unexpected)}; "
            f"codes {dict(sorted(self.codes.items()))}"
        )


def post_raw(srv: Server, body: bytes, client: httpx.Client) -> int:
    """POST the bytes as they are; the status code (0: the connection failed, never right: a
    body over the limit is read and dropped, so the client reads its 413)."""
    try:
        response = client.post(
            f"{srv.url}/webhook/alerts",
            content=body,
            headers={
                "Authorization": f"Bearer {srv.webhook_token}",
                "Content-Type": "application/json",
            },
        )
    except httpx.TransportError:
        return 0
    if response.status_code >= 400:
        detail = response.json().get("detail")  # a JSON error that says what is wrong
        assert isinstance(detail, str) and detail, response.text
    return response.status_code


def post_cases(srv: Server, cases: list[Case]) -> Tally:
    tally = Tally()
    with httpx.Client(timeout=60, trust_env=False) as client:
        for case in cases:
            code = post_raw(srv, case.body, client)
            tally.tried += 1
            tally.codes[code] += 1
            if case.expect == "reject" and 400 <= code < 500 and code not in (401, 429):
                tally.rejected_cleanly += 1
            elif case.expect == "accept" and code == 202:
                tally.accepted += 1
            else:
                tally.unexpected.append(f"{case.name}: {code}")
    return tally


def all_runs(srv: Server) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = srv.get("/runs", params=params)
        assert page.status_code == 200, page.text
        data = page.json()
        runs += data["runs"]
        cursor = data["next"]
        if not cursor:
            return runs


def settle(srv: Server, deadline: float = 240) -> list[dict[str, Any]]:
    """Wait until no run is queued or running; the runs then."""
    end = time.monotonic() + deadline
    while True:
        runs = all_runs(srv)
        busy = [r for r in runs if r["status"] in ("queued", "running")]
        if not busy:
            return runs
        assert time.monotonic() < end, f"{len(busy)} run(s) still busy: {busy[0]['run_id']}"
        time.sleep(1)


def engine_events(
    client: docker.DockerClient, names: list[str], since: float
) -> list[dict[str, Any]]:
    """The Docker engine's own record of anything done to these containers since `since`."""
    found: list[dict[str, Any]] = []
    until = int(time.time()) + 2
    for name in names:
        for event in client.events(
            since=int(since), until=until, decode=True, filters={"container": name}
        ):
            action = str(event.get("Action", "")).split(":", 1)[0]
            if (
                event.get("Type") == "container"
                and action in ACTING_EVENTS
                and int(event.get("timeNano", 0)) >= int(since * 1e9)
            ):
                found.append(event)
    return found


def actions_taken(runs: list[dict[str, Any]]) -> int:
    return sum(len(r.get("actions") or []) for r in runs)
