"""INFRA_BACKEND=swarm on a real single-node swarm, with services of the local test image.

The engine is made a swarm manager when it is not one yet, and left so (other tests may use
it); only the services made here are removed.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest
from docker.types import EndpointSpec, Mount, RestartPolicy, ServiceMode

from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import open_agent
from devops_agent.state import Alert, Target
from devops_agent.tools.registry import Registry
from devops_agent.tools.swarm import SwarmBackend
from tests.support.containers import (
    DATABASE_URL,
    HEALTH_PATH,
    IMAGE,
    LABEL_HEALTH_URL,
    LABEL_TEST,
    free_port,
    probe,
    wait_for,
    wait_probe,
)
from tests.support.factories import drive

pytestmark = pytest.mark.docker


@pytest.fixture
def swarm(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """A swarm manager engine; yields a list that the test adds its services' names to."""
    if docker_client.info()["Swarm"]["LocalNodeState"] != "active":
        with contextlib.suppress(docker.errors.APIError):  # another test may have just done it
            docker_client.swarm.init(advertise_addr="127.0.0.1")
    wait_for(lambda: docker_client.info()["Swarm"]["LocalNodeState"] == "active", 30, what="swarm")
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.services.get(name).remove()


def service(client: docker.DockerClient, names: list[str], prefix: str) -> tuple[str, str]:
    """A one-replica service of the test app on the host network, never restarted by Swarm
    (so a crash stays visible); its name and health URL, once it answers."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    port = free_port()
    url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
    client.services.create(
        IMAGE,
        name=name,
        env=[f"PORT={port}", f"DATABASE_URL={DATABASE_URL}"],
        labels={LABEL_TEST: "1", LABEL_HEALTH_URL: url},
        container_labels={LABEL_TEST: "1"},
        networks=["host"],
        endpoint_spec=EndpointSpec(mode="dnsrr"),
        mounts=[Mount("/run", None, type="tmpfs")],
        restart_policy=RestartPolicy(condition="none"),
        mode=ServiceMode("replicated", replicas=1),
        stop_grace_period=2_000_000_000,
    )
    names.append(name)
    wait_probe(url, 200, timeout=60)
    return name, url


def task_container(client: docker.DockerClient, name: str) -> Any:
    [container] = client.containers.list(filters={"label": f"com.docker.swarm.service.name={name}"})
    return container


async def test_swarm_service_crash_restart_scale_and_logs(
    tmp_path, docker_client: docker.DockerClient, swarm: list[str]
) -> None:
    name, url = service(docker_client, swarm, "swarm-api")
    backend = SwarmBackend()
    registry = Registry(backend)
    target = await backend.resolve(["nope-" + name, name])
    assert isinstance(target, Target) and target.kind == "swarm_service" and target.scalable
    assert target.key == f"swarm:{name}" and target.labels[LABEL_HEALTH_URL] == url
    assert await backend.resolve(["no-such-service-x1"]) is None
    assert (await backend.ping()).ok

    task_container(docker_client, name).exec_run(["touch", "/run/crash"])
    wait_for(
        lambda: any(
            t["Status"]["State"] == "failed" for t in docker_client.services.get(name).tasks()
        ),
        30,
        what="the task to fail",
    )
    health = await registry.run("health_check", {"target": name})
    assert health.ok and health.data["healthy"] is False
    assert health.data["desired"] == 1 and health.data["running"] == 0
    [slot] = health.data["containers"]
    assert slot["task_state"] == "failed" and slot["exit_code"] == 2
    logs = await registry.run("get_logs", {"target": name})
    assert any("panic: runtime error" in line for line in logs.data["error_lines"])

    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/agent.db",
        data_dir=tmp_path,
        infra_backend="swarm",
        safety_mode=False,
        auto_approve_max_risk="medium",
        validate_timeout=30,
        validate_settle=1,
    )
    alert = Alert(alertname="ServiceDown", fingerprint="f", labels={"service": name})
    async with open_agent(AgentContext.from_settings(settings)) as agent:
        await drive(agent, "swarm-1", [alert])
        state = await agent.state("swarm-1")
    assert state["diagnosis"]["category"] == "crash"
    actions = [(a["operation"], a["target"], a["status"]) for a in state["actions"]]
    assert actions == [("restart_service", name, "succeeded")]
    assert "forced an update" in state["actions"][0]["output"]
    assert state["outcome"] == "resolved" and probe(url) == 200
    healed = await registry.run("health_check", {"target": name})
    assert healed.data["healthy"] and healed.data["containers"][0]["restart_count"] == 1

    # Scale by replicas, with its inverse; what reconcile reads from the service.
    params = {"target": name, "replicas": 2}
    before = await registry.snapshot("scale_service", params)
    assert before is not None and before["replicas"] == 1
    scaled = await registry.run("scale_service", params)
    assert scaled.ok and scaled.data == {"before": 1, "after": 2}
    assert (await registry.reconcile("scale_service", params, before, None)).verdict == "done"
    assert (await registry.run("health_check", {"target": name})).data["desired"] == 2
    back = await registry.run("scale_service", {"target": name, "replicas": before["replicas"]})
    assert back.ok and back.data == {"before": 2, "after": 1}
    too_many = await registry.run("scale_service", {"target": name, "replicas": 50})
    assert too_many.error == "refused"
    restart = {"target": name}
    snap = await registry.snapshot("restart_service", restart)
    assert (await registry.reconcile("restart_service", restart, snap, None)).verdict == "not_done"
    missing = await registry.run("health_check", {"target": "no-such-service-x1"})
    assert missing.error == "not_found"
