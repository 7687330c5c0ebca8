"""Smoke tests: every Lab state really is what it claims, and the intended fix works.

Marked ``docker``: needs a reachable Docker engine and fails (never skips)
without one. The whole file runs in ~15 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import docker
import docker.errors
import pytest

from .containers import (
    IMAGE,
    LABEL_DEPENDS_ON,
    LABEL_HEALTH_URL,
    LABEL_LAB,
    LABEL_TEST,
    Lab,
    container_state,
    container_stats,
    cpu_fraction,
    ensure_test_image,
    logs,
    probe,
    wait_probe,
    wait_status,
)

pytestmark = pytest.mark.docker
T = TypeVar("T")


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = docker.from_env(timeout=30)
    c.ping()  # fails loudly when the engine is missing
    ensure_test_image(c)
    yield c
    c.close()


@pytest.fixture()
def lab(client: docker.DockerClient) -> Iterator[Lab]:
    lab = Lab(client)
    try:
        yield lab
    finally:
        lab.cleanup()


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    t = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - t


def test_image_is_built_idempotently(client: docker.DockerClient) -> None:
    img_id = client.images.get(IMAGE).id
    assert ensure_test_image(client) == IMAGE
    assert client.images.get(IMAGE).id == img_id  # not rebuilt
    out = client.containers.run(IMAGE, ["echo", "hi"], network_mode="host", remove=True)
    assert out == b"hi\n"


def test_healthy(lab: Lab, client: docker.DockerClient) -> None:
    s = lab.healthy(
        compose_service="web",
        compose_project="shop",
        cpus=0.5,
        mem_limit="32m",
        extra_labels={"team": "payments"},
    )
    assert probe(s.health_url, 2) == 200
    st = container_state(client, s.name)
    assert st["Running"] and st["Status"] == "running" and not st["Paused"]
    attrs = lab.container(s).attrs
    labels = attrs["Config"]["Labels"]
    assert labels[LABEL_HEALTH_URL] == s.health_url == f"http://127.0.0.1:{s.port}/cgi-bin/health"
    assert labels[LABEL_TEST] == "1"
    assert labels["team"] == "payments"
    assert labels["com.docker.compose.project"] == "shop"
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "1"
    assert labels["com.docker.compose.oneoff"] == "False"
    assert attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert attrs["HostConfig"]["Memory"] == 32 * 1024 * 1024
    assert attrs["HostConfig"]["NetworkMode"] == "host"
    # SIGTERM is trapped: stop is fast and clean.
    _, took = timed(lab.container(s).stop, timeout=5)
    assert took < 1.0
    assert container_state(client, s.name)["ExitCode"] == 0


def test_crashed_then_restart(lab: Lab, client: docker.DockerClient) -> None:
    s = lab.crashed()
    st = container_state(client, s.name)
    assert st["Status"] == "exited" and st["ExitCode"] == 2 and not st["OOMKilled"]
    assert "panic: runtime error: invalid memory address or nil pointer dereference" in logs(
        client, s.name
    )
    assert probe(s.health_url, 1) is None
    lab.container(s).restart(timeout=2)
    wait_probe(s.health_url, 200, timeout=5)
    assert container_state(client, s.name)["Running"]


def test_hung_then_restart(lab: Lab, client: docker.DockerClient) -> None:
    s = lab.hung()
    t = time.monotonic()
    assert probe(s.health_url, 1.5) is None
    assert time.monotonic() - t < 2.0
    assert container_state(client, s.name)["Running"]
    assert "panic" not in logs(client, s.name) and "error" not in logs(client, s.name)
    _, took = timed(lab.container(s).restart, timeout=2)
    assert took < 1.5
    wait_probe(s.health_url, 200, timeout=5)


def test_paused_then_unpause(lab: Lab, client: docker.DockerClient) -> None:
    s = lab.paused()
    st = container_state(client, s.name)
    assert st["Paused"] and st["Status"] == "paused"
    assert probe(s.health_url, 1) is None
    lab.container(s).unpause()
    wait_probe(s.health_url, 200, timeout=5)


def test_oom_killed_then_restart(lab: Lab, client: docker.DockerClient) -> None:
    s = lab.oom_killed()
    st = container_state(client, s.name)
    assert st["Status"] == "exited"
    assert st["OOMKilled"] is True
    assert st["ExitCode"] == 137
    assert lab.container(s).attrs["HostConfig"]["Memory"] == 16 * 1024 * 1024
    lab.container(s).restart(timeout=2)
    wait_probe(s.health_url, 200, timeout=5)
    assert container_state(client, s.name)["Running"]


def test_config_error_persists_across_restart(lab: Lab, client: docker.DockerClient) -> None:
    s = lab.config_error()
    st = container_state(client, s.name)
    assert st["Status"] == "exited" and st["ExitCode"] == 78
    err = lab.container(s).logs(stdout=False, stderr=True).decode()
    assert "config error: required setting DATABASE_URL is missing" in err
    lab.container(s).restart(timeout=2)
    wait_status(client, s.name, "exited", timeout=5)
    assert container_state(client, s.name)["ExitCode"] == 78
    assert probe(s.health_url, 1) is None


def test_dependency_down_then_start_dependency(lab: Lab, client: docker.DockerClient) -> None:
    d = lab.dependency_down()
    app, db = d.app, d.dependency
    assert db.name.startswith("db-") and app.name.startswith("app-")
    assert app.name[4:] == db.name[3:]
    assert lab.container(app).labels[LABEL_DEPENDS_ON] == db.name
    db_st = container_state(client, db.name)
    assert db_st["Status"] == "exited" and not db_st["Running"]
    assert container_state(client, app.name)["Running"]
    assert probe(app.health_url, 2) == 503
    assert f"error: connection refused to {db.name}:{db.port}" in logs(client, app.name)
    started_at = lab.container(app).attrs["State"]["StartedAt"]
    lab.container(db).start()
    wait_probe(app.health_url, 200, timeout=5)
    assert lab.container(app).attrs["State"]["StartedAt"] == started_at  # app not restarted


def test_cpu_saturated(lab: Lab, client: docker.DockerClient) -> None:
    s = lab.cpu_saturated(compose_service="worker")
    c = lab.container(s)
    assert c.attrs["HostConfig"]["NanoCpus"] == 200_000_000
    assert c.labels["com.docker.compose.service"] == "worker"
    time.sleep(0.5)
    stats, took = timed(container_stats, client, s.name)
    assert took < 5
    assert stats["cpu_stats"]["throttling_data"]["throttled_periods"] > 0
    used = cpu_fraction(stats)
    assert 0.1 < used < 0.3, used  # at its 0.2 CPU quota
    assert probe(s.health_url, 3) == 200


def test_overloaded(lab: Lab, client: docker.DockerClient) -> None:
    s = lab.overloaded(compose_service="frontend")
    code, took = timed(probe, s.health_url, 5)
    assert code == 200 and took > 1.0
    assert "warn: request queue depth 950 exceeds 500; p99 latency 2300ms" in logs(client, s.name)
    stats = container_stats(client, s.name)
    assert stats["memory_stats"]["usage"] < 64 * 1024 * 1024
    assert cpu_fraction(stats) < 0.5


def test_disk_full(lab: Lab, client: docker.DockerClient) -> None:
    s = lab.disk_full()
    assert probe(s.health_url, 2) == 500
    st = container_state(client, s.name)
    assert st["Running"]
    assert "write /data/journal: No space left on device" in logs(client, s.name)
    res = lab.container(s).exec_run(["df", "-k", "/data"])
    assert res.exit_code == 0 and b"100%" in res.output


def test_cleanup_removes_everything(client: docker.DockerClient) -> None:
    lab = Lab(client)
    try:
        a = lab.healthy()
        d = lab.dependency_down()
        names = [a.name, d.app.name, d.dependency.name]
    finally:
        lab.cleanup()
    left = client.containers.list(all=True, filters={"label": f"{LABEL_LAB}={lab.lab_id}"})
    assert left == []
    for n in names:
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(n)
