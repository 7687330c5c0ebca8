"""The gateway watches its own engine (issue 17): a real `devops-agent gateway serve` with
GATEWAY_FORWARD_URL, a real `devops-agent serve` on INFRA_BACKEND=gateway, the real engine, and no
Alertmanager. The gateway's engine is a dockerd of the test's own (agents of other test runs
on the shared engine watch its labelled containers too). The gateway forwards a watched container's crash to the agent's webhook (retrying
while the agent is away), the agent restarts it through the gateway, and the gateway's own
restart (a die with exit 3 while its intent runs) opens no second run."""

from __future__ import annotations

import secrets
import time
from typing import Any

import docker
import httpx
import pytest

from tests.infra.dockerd import second_engine
from tests.infra.gateway import Gateway, gateway
from tests.server.conftest import DEADLINE, Server
from tests.server.test_events_watch import (
    EXITS_3_ON_TERM,
    HEALTHCHECK,
    WATCH,
    crash,
    one_run,
    runs_of,
)
from tests.server.test_trusted_actions import AUTONOMOUS
from tests.support.containers import Lab, free_port, wait_for

pytestmark = pytest.mark.docker


def health(gw: Gateway) -> dict[str, Any]:
    response = httpx.get(
        gw.url + "/health",
        headers={"Authorization": f"Bearer {gw.token}"},
        timeout=10,
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_the_gateway_forwards_its_engines_alerts_and_its_own_restart_is_no_fault(
    tmp_path,
) -> None:
    with second_engine() as engine:
        lab = Lab(engine.client)
        try:
            forwarded(tmp_path, lab, engine.client, engine.unix_url)
        finally:
            lab.cleanup()


def forwarded(tmp_path, lab: Lab, docker_client: docker.DockerClient, docker_host: str) -> None:
    token = secrets.token_hex(16)
    gw_port = free_port()
    agent = Server(
        tmp_path / "agent",
        env={
            **AUTONOMOUS,
            "INFRA_BACKEND": "gateway",
            "GATEWAY_URL": f"http://127.0.0.1:{gw_port}",
            "GATEWAY_TOKEN": token,
            "WATCH_EVENTS": "true",  # applies to INFRA_BACKEND=docker only: the gateway watches
            "VALIDATE_SETTLE": "2",
        },
    )
    forward = {
        "GATEWAY_FORWARD_URL": agent.url + "/webhook/alerts",
        "WEBHOOK_TOKEN": agent.webhook_token,
        "WATCH_EVENTS": "true",
        "VALIDATE_SETTLE": "2",
        "DOCKER_HOST": docker_host,
    }
    with gateway(tmp_path / "gw", token, port=gw_port, **forward) as gw:
        wait_for(lambda: health(gw)["watcher"]["connected"], DEADLINE, what="the gateway's watcher")
        since = time.time()
        app = lab.start(lab._name("behind"), labels=WATCH, command=EXITS_3_ON_TERM)
        crash(lab, app)  # the agent is not running yet: the gateway keeps the alert and retries
        wait_for(lambda: health(gw)["forward"]["last_error"], DEADLINE, what="a failed forward")
        assert health(gw)["forward"]["delivered"] == 0
        try:
            agent.start()
            status = agent.get("/status").json()
            assert status["watcher"]["enabled"] is False  # the agent itself does not watch

            run = agent.wait_status(one_run(agent, app.name), "completed")
            assert run["outcome"] == "resolved", run
            (alert,) = run["alerts"]
            assert alert["alertname"] == "ContainerDied"
            assert alert["labels"]["source"] == "docker-events"
            assert alert["labels"]["container"] == app.name
            assert [(a["operation"], a["status"]) for a in run["actions"]] == [
                ("restart_service", "succeeded")
            ]
            assert lab.container(app).status == "running"
            # A hang: the gateway restarts a running container (SIGTERM: a die with exit 3)
            # while its intent runs; that die is its own doing, not a second incident.
            since = time.time()
            hung = lab.start(
                lab._name("hangs"), labels=WATCH, command=EXITS_3_ON_TERM, healthcheck=HEALTHCHECK
            )
            wait_for(
                lambda: lab.container(hung).attrs["State"]["Health"]["Status"] == "healthy", 60
            )
            lab.exec(hung, "touch", "/run/hang")
            run = agent.wait_status(one_run(agent, hung.name), "completed")
            assert run["outcome"] == "resolved", run
            assert run["alerts"][0]["alertname"] == "ContainerUnhealthy"
            assert [a["operation"] for a in run["actions"]] == ["restart_service"]
            dies = docker_client.events(
                since=int(since) - 1,
                until=int(time.time()) + 1,
                decode=True,
                filters={"type": "container", "container": hung.container_id, "event": "die"},
            )
            assert [e["Actor"]["Attributes"]["exitCode"] for e in dies] == ["3"]

            # Across a restart of the agent nothing is lost: the gateway retries until 2xx.
            agent.stop()
            sentinel = lab.start(lab._name("sentinel"), labels=WATCH)
            crash(lab, sentinel)
            agent.start()
            one_run(agent, sentinel.name)  # every event before it has been handled
            assert len(runs_of(agent, app.name)) == 1
            assert len(runs_of(agent, hung.name)) == 1  # the gateway's own restart: no fault
            assert health(gw)["forward"]["delivered"] >= 2
        finally:
            agent.stop()
