"""The Docker backend against a real engine: typed failures, target resolution, scaling, exec."""

from __future__ import annotations

from datetime import UTC, datetime

import docker
import pytest

from devops_agent.tools.docker import DockerBackend
from devops_agent.tools.registry import Registry
from tests.support.containers import Lab, compose_labels

pytestmark = pytest.mark.docker


@pytest.fixture
def registry() -> Registry:
    return Registry(
        DockerBackend(max_replicas=3, command_allowlist=[["echo", "hello"], ["cat", "/etc/passwd"]])
    )


async def test_engine_unreachable_is_a_typed_result() -> None:
    registry = Registry(DockerBackend(docker_host="tcp://127.0.0.1:1"))
    result = await registry.run("health_check", {"target": "web"})
    assert (result.ok, result.error) == (False, "unreachable") and "unreachable" in result.message
    assert (await registry.backend.ping()).error == "unreachable"
    assert await registry.backend.resolve(["web"]) is None


async def test_missing_target_is_not_found(
    registry: Registry, docker_client: docker.DockerClient
) -> None:
    for op in ("health_check", "get_logs", "check_resources", "restart_service"):
        result = await registry.run(op, {"target": "no-such-thing-91c2"})
        assert (result.ok, result.error) == (False, "not_found"), op
        assert "no-such-thing-91c2" in result.message


async def test_resolution_by_name_then_compose_label(registry: Registry, lab: Lab) -> None:
    app = lab.healthy(compose_service="shop-api", compose_project=f"p{lab.lab_id}")
    by_name = await registry.backend.resolve(["nothing-here", app.name])
    assert by_name is not None and (by_name.name, by_name.kind) == (app.name, "container")
    by_service = await registry.backend.resolve(["shop-api"])
    assert by_service is not None and by_service.kind == "compose_service"
    assert by_service.containers == [app.name] and by_service.scalable


async def test_cgroup_files_and_the_stats_api_agree_on_a_container_at_its_quota(
    lab: Lab,
) -> None:
    """On the engine's host, check_resources reads the cgroup files (no wait for the stats
    API's next tick); elsewhere it uses the stats API. Both see the same container at its quota."""
    app = lab.cpu_saturated()
    local = await Registry(DockerBackend()).run("check_resources", {"target": app.name})
    remote_like = Registry(DockerBackend(cgroup_root=None))
    api = await remote_like.run("check_resources", {"target": app.name})
    [by_files], [by_api] = local.data["containers"], api.data["containers"]
    assert (by_files["source"], by_api["source"]) == ("cgroup", "stats API")
    for usage in (by_files, by_api):
        # Throttled in most periods (what the rules call "at its quota"); the CPU share itself
        # varies with what else the two cores run at the time.
        assert usage["cpu_limit_cpus"] == 0.2 and usage["throttled_ratio"] > 0.5
        assert usage["cpu_of_limit_percent"] > 50 and usage["memory_usage"] > 0


async def test_without_the_cgroup_files_it_falls_back_to_the_stats_api(lab: Lab, tmp_path) -> None:
    app = lab.healthy()
    empty = Registry(DockerBackend(cgroup_root=tmp_path))  # a host without these containers
    [usage] = (await empty.run("check_resources", {"target": app.name})).data["containers"]
    assert usage["source"] == "stats API" and usage["running"]


async def test_health_logs_and_resources_of_a_healthy_container(
    registry: Registry, lab: Lab
) -> None:
    app = lab.healthy(cpus=0.5, mem_limit="64m")
    health = await registry.run("health_check", {"target": app.name})
    assert health.ok and health.data["healthy"] and health.data["probe"]["status"] == 200
    facts = health.data["containers"][0]
    assert facts["running"] and not facts["oom_killed"] and facts["memory_limit"] == 64 * 2**20
    logs = await registry.run("get_logs", {"target": app.name, "lines": 1})
    assert logs.ok and logs.data["lines"] == 1
    resources = await registry.run("check_resources", {"target": app.name})
    usage = resources.data["containers"][0]
    assert usage["cpu_limit_cpus"] == 0.5 and usage["memory_limit"] == 64 * 2**20
    assert 0 < usage["memory_percent"] < 90


async def test_scale_clones_and_removes_replicas_within_bounds(
    registry: Registry, lab: Lab, docker_client: docker.DockerClient
) -> None:
    labels = {**compose_labels("scale-svc", f"p{lab.lab_id}")}
    lab.healthy(extra_labels=labels)

    def replicas() -> list[str]:
        found = docker_client.containers.list(
            all=True, filters={"label": "com.docker.compose.service=scale-svc"}
        )
        lab.created.extend(str(c.id) for c in found)
        return sorted(c.labels["com.docker.compose.container-number"] for c in found)

    up = await registry.run("scale_service", {"target": "scale-svc", "replicas": 3})
    assert up.ok and up.data == {"before": 1, "after": 3} and replicas() == ["1", "2", "3"]
    too_many = await registry.run("scale_service", {"target": "scale-svc", "replicas": 4})
    assert (
        too_many.error == "refused"
        and "MAX_REPLICAS=3" in too_many.message
        and too_many.data["reason"] == "max_replicas"  # the run escalates with this code
        and len(replicas()) == 3
    )
    down = await registry.run("scale_service", {"target": "scale-svc", "replicas": 1})
    assert down.ok and replicas() == ["1"]


async def test_plain_container_cannot_be_scaled(registry: Registry, lab: Lab) -> None:
    app = lab.healthy()
    result = await registry.run("scale_service", {"target": app.name, "replicas": 2})
    assert result.error == "invalid" and "not a Compose service" in result.message


async def test_execute_command_runs_only_allowlisted_argv_without_a_shell(
    registry: Registry, lab: Lab
) -> None:
    app = lab.healthy()
    ok = await registry.run(
        "execute_command", {"target": app.name, "argv": ["echo", "hello", "$(id)", ";", "ls"]}
    )
    # No shell: the metacharacters reach echo as plain words.
    assert ok.ok and ok.data["output"].strip() == "hello $(id) ; ls"
    refused = await registry.run(
        "execute_command", {"target": app.name, "argv": ["sh", "-c", "echo hello"]}
    )
    assert refused.error == "refused" and "EXECUTE_COMMAND_ALLOWLIST" in refused.message
    prefix_trick = await registry.run("execute_command", {"target": app.name, "argv": ["echo"]})
    assert prefix_trick.error == "refused"


async def test_a_slow_engine_call_is_in_flight_not_a_clean_timeout(lab: Lab) -> None:
    """The engine goes on with a restart the call gave up waiting for: the result says so
    (`in_flight`), and reconciling it against the snapshot finds it done once it is."""
    # PID 1 `sleep` ignores SIGTERM, so the restart waits out its stop timeout (2 s).
    app = lab.start(f"stubborn-{lab.lab_id}", command=["sleep", "300"], wait_healthy=False)
    registry = Registry(DockerBackend(timeout=0.2))
    params = {"target": app.name, "timeout": 2}
    since = datetime.now(UTC).isoformat()
    before = await registry.snapshot("restart_service", params)
    result = await registry.run("restart_service", params)
    assert (result.ok, result.error) == (False, "timeout") and "did not finish" in result.message
    assert result.data["in_flight"] is True and "reconcile" in result.message
    found = await registry.reconcile("restart_service", params, before, since)
    assert found.verdict == "done", found.detail
