"""The mutating operations on a real engine: scaling keeps the whole configuration and never
goes to zero; execute_command honours its timeout."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from devops_agent.tools.docker import DockerBackend
from devops_agent.tools.registry import Registry
from tests.support.containers import Lab, compose_labels, wait_for

pytestmark = pytest.mark.docker
SECOND = 1_000_000_000
KEPT = (
    ("Config", "User"),
    ("Config", "Healthcheck"),
    ("Config", "Env"),
    ("Config", "Cmd"),
    ("HostConfig", "CapAdd"),
    ("HostConfig", "CapDrop"),
    ("HostConfig", "SecurityOpt"),
    ("HostConfig", "ReadonlyRootfs"),
    ("HostConfig", "Binds"),
    ("HostConfig", "Tmpfs"),
    ("HostConfig", "RestartPolicy"),
    ("HostConfig", "Memory"),
    ("HostConfig", "NanoCpus"),
    ("HostConfig", "NetworkMode"),
)


def replicas(client: docker.DockerClient, service: str) -> list[docker.models.containers.Container]:
    found = client.containers.list(
        all=True, filters={"label": f"com.docker.compose.service={service}"}
    )
    return sorted(found, key=lambda c: int(c.labels["com.docker.compose.container-number"]))


async def test_a_clone_keeps_the_whole_configuration(
    lab: Lab, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    service = f"svc{lab.lab_id}"
    shared = tmp_path / "shared"
    shared.mkdir()
    template = lab.start(
        lab._name(service),
        labels={**compose_labels(service, f"p{lab.lab_id}"), "team": "payments"},
        user="65534:65534",
        cap_add=["NET_ADMIN"],
        cap_drop=["MKNOD"],
        security_opt=["no-new-privileges"],
        read_only=True,
        volumes={str(shared): {"bind": "/shared", "mode": "ro"}},
        healthcheck={"test": ["CMD", "true"], "interval": 5 * SECOND, "retries": 2},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
        mem_limit="64m",
        nano_cpus=500_000_000,
        wait_healthy=False,
    )
    registry = Registry(DockerBackend(max_replicas=4))
    result = await registry.run("scale_service", {"target": service, "replicas": 2})
    assert result.ok, result.message
    original, clone = replicas(docker_client, service)
    lab.created.append(str(clone.id))
    assert original.id == template.container_id
    for section, key in KEPT:
        assert clone.attrs[section].get(key) == original.attrs[section].get(key), (section, key)
    assert clone.labels["team"] == "payments"
    assert clone.labels["com.docker.compose.container-number"] == "2"
    wait_for(lambda: docker_client.containers.get(clone.id).status == "running", timeout=15)


async def test_scaling_never_reaches_zero_and_removes_the_newest_first(
    lab: Lab, docker_client: docker.DockerClient
) -> None:
    service = f"web{lab.lab_id}"
    lab.start(lab._name(service), labels=compose_labels(service, f"p{lab.lab_id}"))
    registry = Registry(DockerBackend(max_replicas=5))
    assert (await registry.run("scale_service", {"target": service, "replicas": 3})).ok
    first, second, third = replicas(docker_client, service)
    lab.created += [str(second.id), str(third.id)]

    zero = await registry.run("scale_service", {"target": service, "replicas": 0})
    assert (zero.ok, zero.error) == (False, "invalid") and "replicas" in zero.message
    assert len(replicas(docker_client, service)) == 3

    assert (await registry.run("scale_service", {"target": service, "replicas": 2})).ok
    assert [c.id for c in replicas(docker_client, service)] == [first.id, second.id]


async def test_execute_command_honours_its_timeout(
    lab: Lab, docker_client: docker.DockerClient
) -> None:
    app = lab.start(lab._name("exec"))
    registry = Registry(DockerBackend(command_allowlist=[["sleep"]]))
    result = await registry.run(
        "execute_command", {"target": app.name, "argv": ["sleep", "120"], "timeout": 1}
    )
    assert (result.ok, result.error) == (False, "timeout"), result
    assert "killed" in result.message and result.data["in_flight"] is False
    top = docker_client.api.top(app.container_id)
    assert not [p for p in top["Processes"] if "sleep 120" in " ".join(p)], top
