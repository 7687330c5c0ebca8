"""Each fault of issue 3 injected into a real container, run through the whole graph.

Safety off and AUTO_APPROVE_MAX_RISK=medium, so the agent acts by itself where it should; the
tests assert the category, the plan, the actions taken and the container's health afterwards.
"""

from __future__ import annotations

import secrets
from typing import Any

import docker
import pytest

from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import open_agent
from devops_agent.state import Alert
from tests.support.containers import Lab, container_state, probe, wait_log, wait_probe, wait_status
from tests.support.factories import drive

pytestmark = pytest.mark.docker


async def run_incident(tmp_path, service: str, **settings: Any) -> dict[str, Any]:
    config = {
        "safety_mode": False,
        "auto_approve_max_risk": "medium",
        "validate_timeout": 15,
        "validate_settle": 1,  # a short window: the fix is watched, briefly
        **settings,
    }
    s = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/agent.db", **config)
    alert = Alert(
        alertname="ServiceDown",
        fingerprint="abc",
        labels={"service": service, "severity": "critical"},
    )
    async with open_agent(AgentContext.from_settings(s)) as agent:
        nodes = await drive(agent, "run-1", [alert])
        state = await agent.state("run-1")
    state["nodes"] = nodes
    return state


def started_at(client: docker.DockerClient, name: str) -> str:
    return str(client.containers.get(name).attrs["State"]["StartedAt"])


def plan_ops(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["operation"], s["target"]) for s in (state["plan"] or {}).get("steps", [])]


def done(state: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["operation"], a["target"], a["status"]) for a in state.get("actions", [])]


async def test_crashed_process_is_restarted(
    tmp_path, lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.crashed()
    state = await run_incident(tmp_path, app.name)
    assert state["diagnosis"]["category"] == "crash"
    assert "exited with code 2" in state["diagnosis"]["root_cause"]
    assert done(state) == [("restart_service", app.name, "succeeded")]
    assert state["outcome"] == "resolved" and probe(app.health_url) == 200


async def test_hung_process_is_restarted(tmp_path, lab: Lab) -> None:
    app = lab.hung()
    state = await run_incident(tmp_path, app.name)
    [health] = [e for e in state["evidence"] if e["source"] == "health_check"]
    assert "nothing else has seen it" in health["data"]["probe"]["quick_probe"]  # so it waited
    assert "no answer in 3s" in health["data"]["probe"]["summary"]
    assert state["diagnosis"]["category"] == "hang"
    assert done(state) == [("restart_service", app.name, "succeeded")]
    assert state["outcome"] == "resolved" and probe(app.health_url) == 200


async def test_hang_that_docker_saw_is_diagnosed_after_the_quick_probe(tmp_path, lab: Lab) -> None:
    app = lab.hung(docker_healthcheck=True)
    state = await run_incident(tmp_path, app.name)
    [health] = [e for e in state["evidence"] if e["source"] == "health_check"]
    quick = health["data"]["probe"]
    assert quick["error"] == "timeout" and "no answer in 0.5s" in quick["summary"]
    assert f"HEALTHCHECK reports {app.name} unhealthy" in quick["confirmed_by"]
    assert state["diagnosis"]["category"] == "hang"
    assert done(state) == [("restart_service", app.name, "succeeded")]
    assert state["outcome"] == "resolved" and probe(app.health_url) == 200


async def test_paused_container_is_unpaused(
    tmp_path, lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.paused()
    state = await run_incident(tmp_path, app.name)
    assert state["diagnosis"]["category"] == "hang" and "paused" in state["diagnosis"]["root_cause"]
    assert state["actions"][0]["output"] == f"unpaused {app.name}"
    assert (
        state["outcome"] == "resolved"
        and container_state(docker_client, app.name)["Paused"] is False
    )


async def test_oom_killed_is_restarted_and_the_limit_called_too_small(tmp_path, lab: Lab) -> None:
    app = lab.oom_killed()
    state = await run_incident(tmp_path, app.name)
    assert state["diagnosis"]["category"] == "memory_exhaustion"
    assert "limit of 16 MiB is too small" in state["diagnosis"]["root_cause"]
    assert done(state) == [("restart_service", app.name, "succeeded")]
    assert state["outcome"] == "resolved" and probe(app.health_url) == 200


async def test_config_error_is_escalated_without_restarting(
    tmp_path, lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.config_error()
    before = started_at(docker_client, app.name)
    state = await run_incident(tmp_path, app.name)
    assert state["diagnosis"]["category"] == "config_error"
    assert "EX_CONFIG" in state["diagnosis"]["root_cause"]
    assert state["plan"]["action"] == "escalate" and state["outcome"] == "escalated"
    assert done(state) == [] and started_at(docker_client, app.name) == before


async def test_dependency_is_started_not_the_caller(
    tmp_path, lab: Lab, docker_client: docker.DockerClient
) -> None:
    pair = lab.dependency_down()
    app_started = started_at(docker_client, pair.app.name)
    state = await run_incident(tmp_path, pair.app.name)
    assert state["diagnosis"]["category"] == "dependency_failure"
    assert pair.dependency.name in state["diagnosis"]["root_cause"]
    assert plan_ops(state) == [("restart_service", pair.dependency.name)]
    assert done(state) == [("restart_service", pair.dependency.name, "succeeded")]
    assert state["outcome"] == "resolved" and probe(pair.app.health_url) == 200
    assert started_at(docker_client, pair.app.name) == app_started


async def test_dependency_named_only_in_the_logs_is_found(
    tmp_path, lab: Lab, docker_client: docker.DockerClient
) -> None:
    # No depends-on label: only the app's error line names the database.
    suffix = secrets.token_hex(3)
    db = lab.start(f"db-{suffix}", env={"APP_WORKLOAD": "db"})
    app = lab.start(f"app-{suffix}", env={"UPSTREAM_NAME": db.name, "UPSTREAM_PORT": str(db.port)})
    lab.container(db).stop(timeout=2)
    wait_status(docker_client, db.name, "exited")
    wait_probe(app.health_url, 503)
    wait_log(docker_client, app.name, f"connection refused to {db.name}")
    state = await run_incident(tmp_path, app.name)
    assert state["diagnosis"]["category"] == "dependency_failure"
    assert "named in the error lines" in " ".join(state["diagnosis"]["evidence"])
    assert done(state) == [("restart_service", db.name, "succeeded")]
    assert state["outcome"] == "resolved" and probe(app.health_url) == 200


async def test_cpu_saturated_compose_service_is_scaled(
    tmp_path, lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.cpu_saturated(compose_service="batch-svc", compose_project=f"lab{lab.lab_id}")
    state = await run_incident(tmp_path, "batch-svc")
    assert state["diagnosis"]["category"] == "cpu_saturation"
    assert done(state) == [("scale_service", "batch-svc", "succeeded")]
    assert state["plan"]["steps"][0]["params"]["replicas"] == 2
    replicas = docker_client.containers.list(
        filters={"label": "com.docker.compose.service=batch-svc"}
    )
    assert len(replicas) == 2 and app.name in [c.name for c in replicas]
    for extra in replicas:
        if extra.name != app.name:
            lab.created.append(str(extra.id))


async def test_cpu_saturated_plain_container_is_escalated(tmp_path, lab: Lab) -> None:
    app = lab.cpu_saturated()
    state = await run_incident(tmp_path, app.name)
    assert state["diagnosis"]["category"] == "cpu_saturation"
    assert state["outcome"] == "escalated" and "not a scalable service" in state["escalation"]
    assert done(state) == []


async def test_overloaded_compose_service_is_scaled(
    tmp_path, lab: Lab, docker_client: docker.DockerClient
) -> None:
    lab.overloaded(compose_service="front-svc", compose_project=f"lab{lab.lab_id}")
    state = await run_incident(tmp_path, "front-svc")
    assert state["diagnosis"]["category"] == "overload"
    assert "queue depth" in state["diagnosis"]["root_cause"]
    assert done(state) == [("scale_service", "front-svc", "succeeded")]
    replicas = docker_client.containers.list(
        filters={"label": "com.docker.compose.service=front-svc"}
    )
    lab.created.extend(str(c.id) for c in replicas)
    assert len(replicas) == 2


async def test_overloaded_plain_container_is_escalated(tmp_path, lab: Lab) -> None:
    app = lab.overloaded()
    state = await run_incident(tmp_path, app.name)
    assert state["diagnosis"]["category"] == "overload" and state["outcome"] == "escalated"


async def test_full_disk_is_escalated(tmp_path, lab: Lab) -> None:
    app = lab.disk_full()
    state = await run_incident(tmp_path, app.name)
    assert state["diagnosis"]["category"] == "disk_full"
    assert "No space left on device" in state["diagnosis"]["root_cause"]
    assert state["outcome"] == "escalated" and done(state) == []


async def test_healthy_container_needs_no_action(tmp_path, lab: Lab) -> None:
    app = lab.healthy()
    state = await run_incident(tmp_path, app.name)
    assert state["diagnosis"]["category"] == "no_fault"
    assert state["outcome"] == "no_action" and done(state) == []
    assert state["nodes"] == ["triage", "root_cause", "plan", "learn"]


async def test_unknown_target_is_escalated(tmp_path, docker_client: docker.DockerClient) -> None:
    state = await run_incident(tmp_path, "no-such-service-7f3a")
    assert state["outcome"] == "escalated" and "unknown target" in state["escalation"]
    assert state["nodes"] == ["triage", "escalate", "learn"]
