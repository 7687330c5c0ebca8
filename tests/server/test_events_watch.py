"""The engine's events start incidents (issue 20): a real engine, a real server, no Alertmanager.

Each test ends with a "drain": a fresh watched container crashes and its run appears, so every
event before it has been handled (the watcher handles one engine's events in order); only then
does the test count what else was opened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker
import pytest

from tests.server.conftest import DEADLINE, Server, alert_payload
from tests.server.test_trusted_actions import AUTONOMOUS
from tests.support.containers import Lab, Started, wait_for, wait_status

pytestmark = pytest.mark.docker
WATCH = {"devops-agent.watch": "true"}
# PID 1 exits 3 on SIGTERM: a stop or a restart ends in a non-zero exit, like many real services.
EXITS_3_ON_TERM = ["/bin/sh", "-c", "trap 'exit 3' TERM; /app/run & wait $!"]
SECOND = 1_000_000_000
HEALTHCHECK = {
    "test": [
        "CMD-SHELL",
        "timeout 1 /www/cgi-bin/health >/tmp/hc 2>&1; grep -q 'Status: 200' /tmp/hc",
    ],
    "interval": SECOND,
    "timeout": 2 * SECOND,
    "retries": 1,
}


def watching(srv: Server) -> dict[str, Any]:
    """Wait until the server's watcher is connected; its /status block."""

    def connected() -> dict[str, Any] | None:
        block: dict[str, Any] = srv.get("/status").json()["watcher"]
        return block if block.get("connected") else None

    return wait_for(connected, timeout=DEADLINE, what="the events watcher to connect")


def runs_of(srv: Server, service: str) -> list[dict[str, Any]]:
    response = srv.get("/runs", params={"service": service})
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["runs"]
    return runs


def one_run(srv: Server, service: str, timeout: float = DEADLINE) -> str:
    found = wait_for(lambda: runs_of(srv, service), timeout=timeout, what=f"a run for {service}")
    return str(found[0]["run_id"])


def crash(lab: Lab, app: Started) -> None:
    lab.exec(app, "touch", "/run/crash")
    wait_status(lab.client, app.name, "exited")


def drain(srv: Server, lab: Lab) -> None:
    """Every event so far has been handled once this crash's run exists."""
    sentinel = lab.start(lab._name("sentinel"), labels=WATCH)
    crash(lab, sentinel)
    one_run(srv, sentinel.name)


def test_a_watched_crash_heals_without_alertmanager_and_stops_open_nothing(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    srv = make_server(**AUTONOMOUS, WATCH_EVENTS="true", VALIDATE_SETTLE="1")
    status = watching(srv)
    assert status["engine"] and status["connects"] >= 1
    stopped = lab.start(lab._name("stopped"), labels=WATCH, command=EXITS_3_ON_TERM)
    restarted = lab.start(lab._name("restarted"), labels=WATCH, command=EXITS_3_ON_TERM)
    unwatched = lab.start(lab._name("unwatched"))
    app = lab.start(lab._name("crashy"), labels=WATCH)

    lab.container(stopped).stop(timeout=10)
    lab.container(restarted).restart(timeout=10)
    assert lab.container(stopped).attrs["State"]["ExitCode"] == 3  # non-zero, yet no fault
    crash(lab, unwatched)
    hungry = lab.start(lab._name("hungry"), labels=WATCH, mem_limit="16m", memswap_limit="16m")
    lab.exec(hungry, "touch", "/run/oom")
    wait_status(lab.client, hungry.name, "exited", timeout=60)
    crash(lab, app)

    run = srv.wait_status(one_run(srv, app.name), "completed")
    assert run["outcome"] == "resolved", run
    (alert,) = run["alerts"]
    assert alert["alertname"] == "ContainerDied"
    assert alert["labels"]["container"] == app.name and alert["labels"]["exit_code"] == "2"
    assert alert["labels"]["source"] == "docker-events"
    assert [a["operation"] for a in run["actions"]] == ["restart_service"]
    assert lab.container(app).status == "running"

    drain(srv, lab)
    assert runs_of(srv, unwatched.name) == []
    assert runs_of(srv, stopped.name) == []
    assert runs_of(srv, restarted.name) == []
    assert len(runs_of(srv, app.name)) == 1
    # The oom and the die after it (exit 137, no kill before it): one alert, one run.
    (oom_run,) = runs_of(srv, hungry.name)
    alerts = srv.run(oom_run["run_id"])["alerts"]
    assert {a["alertname"] for a in alerts} == {"ContainerOOMKilled"}, alerts
    assert len({(a["fingerprint"], a["startsAt"]) for a in alerts}) == 1
    assert srv.get("/status").json()["watcher"]["alerts_sent"] >= 2


def test_a_hang_is_restarted_and_the_agents_own_restart_opens_nothing(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    """Docker's HEALTHCHECK says unhealthy; the agent restarts it (SIGTERM: exit 3, a `die`
    that is the agent's own doing), and the run ends resolved: one run, no second incident."""
    srv = make_server(**AUTONOMOUS, WATCH_EVENTS="true", VALIDATE_SETTLE="2")
    watching(srv)
    since = time.time()
    app = lab.start(
        lab._name("hangs"), labels=WATCH, command=EXITS_3_ON_TERM, healthcheck=HEALTHCHECK
    )
    wait_for(lambda: lab.container(app).attrs["State"]["Health"]["Status"] == "healthy", 60)
    lab.exec(app, "touch", "/run/hang")

    run = srv.wait_status(one_run(srv, app.name), "completed")
    assert run["outcome"] == "resolved", run
    assert run["alerts"][0]["alertname"] == "ContainerUnhealthy"
    assert run["diagnosis"]["category"] == "hang"
    assert [a["operation"] for a in run["actions"]] == ["restart_service"]
    dies = [
        e
        for e in docker_client.events(
            since=int(since) - 1,
            until=int(time.time()) + 1,
            decode=True,
            filters={"type": "container", "container": app.container_id, "event": "die"},
        )
    ]
    assert [d["Actor"]["Attributes"]["exitCode"] for d in dies] == ["3"]  # the restart's die

    drain(srv, lab)
    assert len(runs_of(srv, app.name)) == 1


def test_alertmanager_and_the_engine_report_one_fault_into_one_run(
    make_server: Callable[..., Server], lab: Lab
) -> None:
    """With SAFETY_MODE on, runs wait for approval (open): whichever source comes second joins.
    A container that Docker restarts after every crash is one crash loop in one run."""
    srv = make_server(WATCH_EVENTS="true", CRASH_LOOP_WINDOW="300")
    watching(srv)

    # The event first, then Alertmanager's alert for the same crash.
    app = lab.start(lab._name("first"), labels=WATCH)
    crash(lab, app)
    run_id = one_run(srv, app.name)
    srv.wait_status(run_id, "awaiting_approval")
    response = srv.webhook(alert_payload(app.name))
    assert response.status_code == 202, response.text
    assert response.json()["runs"][0]["run_id"] == run_id
    names = sorted(a["alertname"] for a in srv.run(run_id)["alerts"])
    assert names == ["ContainerDied", "ServiceDown"], names

    # Alertmanager first (the health URL stops answering), then Docker's HEALTHCHECK.
    slow = dict(HEALTHCHECK, interval=2 * SECOND, retries=2)
    hung = lab.start(lab._name("second"), labels=WATCH, healthcheck=slow)
    lab.exec(hung, "touch", "/run/hang")
    response = srv.webhook(alert_payload(hung.name))
    hung_run = response.json()["runs"][0]["run_id"]
    srv.wait_run(
        hung_run,
        lambda r: any(a["alertname"] == "ContainerUnhealthy" for a in r["alerts"]),
        "joined by the engine's alert",
    )

    # Docker's restart policy brings it back after every crash: one loop, one run.
    looping = lab.start(
        lab._name("loop"),
        labels=WATCH,
        command=["/bin/sh", "-c", "sleep 1; exit 4"],
        wait_healthy=False,
        restart_policy={"Name": "always"},
    )

    def loop_alerts() -> list[dict[str, Any]]:
        alerts = [a for r in runs_of(srv, looping.name) for a in srv.run(r["run_id"])["alerts"]]
        return [a for a in alerts if a["alertname"] == "ContainerCrashLooping"]

    wait_for(loop_alerts, timeout=DEADLINE, what="a crash loop")
    opened = len(runs_of(srv, looping.name))
    assert opened <= 3  # the deaths before the loop was seen, at most
    restarts = lab.container(looping).attrs["RestartCount"]
    wait_for(lambda: lab.container(looping).attrs["RestartCount"] >= restarts + 2, timeout=60)
    lab.container(looping).update(restart_policy={"Name": "no"})
    lab.container(looping).stop(timeout=1)
    drain(srv, lab)
    assert len(runs_of(srv, looping.name)) == opened  # more deaths, no more incidents
    assert len({(a["fingerprint"], a["startsAt"]) for a in loop_alerts()}) == 1
    assert [r["run_id"] for r in runs_of(srv, hung.name)] == [hung_run]
    assert [r["run_id"] for r in runs_of(srv, app.name)] == [run_id]
