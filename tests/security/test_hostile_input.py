"""At least 200 hand-made hostile webhook bodies against a real server and a real Docker engine.

Each must get a clean answer (4xx for hopeless payloads, 202 for well-formed hostile ones), the
server must stay healthy, and hostile input must take no action: no run records an action, and
the Docker engine's own event stream shows nothing done to the healthy container they name.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import docker
import httpx
import pytest

from tests.conftest import fresh_pg_database
from tests.security.harness import (
    actions_taken,
    engine_events,
    post_cases,
    settle,
)
from tests.security.payloads import accepted, all_cases
from tests.server.conftest import Server
from tests.support.containers import Lab


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The settings of the database every server of this module uses: the suite runs on both."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_pg_database() as url:
        yield {"DATABASE_URL": url, "AUDIT_KEY": secrets.token_hex(32)}


@pytest.fixture(scope="module")
def server(database: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with ExitStack() as stack:
        srv = Server(tmp_path_factory.mktemp("hostile"), env=database).start()
        stack.callback(srv.stop)
        yield srv


@pytest.fixture
def make_server(database: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(**env: str) -> Server:
        srv = Server(tmp_path / f"server{len(made)}", env={**database, **env})
        made.append(srv)
        return srv.start()

    yield make
    for srv in made:
        srv.stop()


def _report(title: str, line: str) -> None:
    print(f"\n[hostile input] {title}: {line}")


def test_hostile_payloads_with_safety_mode(
    server: Server, lab: Lab, docker_client: docker.DockerClient
) -> None:
    healthy = lab.healthy("hostile")
    cases = all_cases(healthy.name)
    assert len(cases) >= 200
    since = time.time()
    tally = post_cases(server, cases)
    assert tally.unexpected == [], tally.unexpected
    assert server.get("/health").status_code == 200
    status = server.get("/status")
    assert status.status_code == 200 and status.json()["database"]["ok"]
    runs = settle(server)
    taken = actions_taken(runs)
    events = engine_events(docker_client, [healthy.name], since)
    outcomes = Counter(str(r["outcome"]) for r in runs)
    _report(
        "SAFETY_MODE=true",
        f"{tally.line()}; runs {len(runs)} {dict(outcomes)}; actions taken {taken}; "
        f"engine events on the named container {len(events)}",
    )
    assert taken == 0
    assert events == [], events
    assert not [r for r in runs if r["status"] == "failed"], "a run failed on hostile input"
    assert docker_client.containers.get(healthy.name).status == "running"


def test_hostile_payloads_when_the_agent_may_act_alone(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    """SAFETY_MODE off and restarts allowed: the evidence says healthy, so still nothing acts."""
    srv = make_server(SAFETY_MODE="false", AUTO_APPROVE_MAX_RISK="medium")
    healthy = lab.healthy("hostile-auto")
    cases = accepted(healthy.name)
    since = time.time()
    tally = post_cases(srv, cases)
    assert tally.unexpected == [], tally.unexpected
    runs = settle(srv)
    taken = actions_taken(runs)
    events = engine_events(docker_client, [healthy.name], since)
    outcomes = Counter(str(r["outcome"]) for r in runs)
    _report(
        "SAFETY_MODE=false AUTO_APPROVE_MAX_RISK=medium",
        f"{tally.line()}; runs {len(runs)} {dict(outcomes)}; actions taken {taken}; "
        f"engine events on the named container {len(events)}",
    )
    assert taken == 0
    assert events == [], events
    assert srv.get("/health").status_code == 200


def test_chunked_bodies_over_the_limit(server: Server) -> None:
    """No Content-Length to refuse early: the limit holds while the body is read, and the client
    reads the 413 (the rest of the body is read and dropped first)."""

    def chunks(total: int) -> object:
        sent = 0
        while sent < total:
            yield b" " * 65536
            sent += 65536

    headers = {"Authorization": f"Bearer {server.webhook_token}"}
    with httpx.Client(timeout=60, trust_env=False) as client:
        for path, size, token in [
            ("/webhook/alerts", 2 * 1024 * 1024, server.webhook_token),
            ("/runs/x/resume", 256 * 1024, server.token),
        ]:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            response = client.post(f"{server.url}{path}", content=chunks(size), headers=headers)
            assert response.status_code == 413, (path, response.status_code, response.text)
    assert server.get("/health").status_code == 200


def test_api_bodies_are_small(server: Server) -> None:
    """Every endpoint but the webhook takes at most 64 KiB."""
    big = {"decision": "approve", "approver": "a", "comment": "x" * 70_000}
    assert server.post("/runs/x/resume", json=big).status_code == 413
    assert server.post("/control/pause-actions", json={"reason": "x" * 70_000}).status_code == 413
    assert server.get("/status").json()["kill_switch"]["actions_paused"] is False
