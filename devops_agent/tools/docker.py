"""The Docker backend: the registry's operations on a real Docker engine (DOCKER_HOST honoured).

Every SDK call blocks, so each operation runs in a worker thread under a deadline. Failures come
back as typed OperationResults (unreachable, not_found, timeout, invalid, failed), never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from pydantic import BaseModel
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout

from devops_agent.state import Target
from devops_agent.tools import cgroups
from devops_agent.tools.logs import error_lines, split_lines
from devops_agent.tools.registry import (
    DEFAULT_PROBE_TIMEOUT,
    ExecuteCommandParams,
    GetLogsParams,
    OperationResult,
    RestartServiceParams,
    ScaleServiceParams,
)

COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_NUMBER = "com.docker.compose.container-number"
HEALTH_URL = "devops-agent.health-url"
OUTPUT_CAP = 16_384


class TargetMissing(Exception):
    """The named service has no container."""


def _parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")[:26] + "+00:00")
    except ValueError:
        return None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    a, b = _parse_time(start), _parse_time(end)
    return round((b - a).total_seconds(), 3) if a and b else None


def container_facts(container: Container) -> dict[str, Any]:
    """The parts of `docker inspect` that tell what happened to a container."""
    attrs = container.attrs
    state = attrs.get("State", {})
    health = (state.get("Health") or {}).get("Status", "none")
    return {
        "name": container.name,
        "id": container.id[:12] if container.id else "",
        "status": state.get("Status", "unknown"),
        "running": bool(state.get("Running")) and not state.get("Paused"),
        "paused": bool(state.get("Paused")),
        "restarting": bool(state.get("Restarting")),
        "oom_killed": bool(state.get("OOMKilled")),
        "exit_code": state.get("ExitCode"),
        "error": state.get("Error", ""),
        "health": health,
        "restart_count": attrs.get("RestartCount", 0),
        "started_at": state.get("StartedAt"),
        "finished_at": state.get("FinishedAt"),
        "ran_for_s": _seconds_between(state.get("StartedAt"), state.get("FinishedAt")),
        "memory_limit": (attrs.get("HostConfig") or {}).get("Memory", 0),
        "labels": attrs.get("Config", {}).get("Labels") or {},
    }


class DockerBackend:
    """Operations on Docker containers and Compose services."""

    name = "docker"

    def __init__(
        self,
        docker_host: str | None = None,
        timeout: float = 60.0,
        max_replicas: int = 10,
        command_allowlist: list[list[str]] | None = None,
        cgroup_root: Path | None = cgroups.ROOT,
    ) -> None:
        self.docker_host = docker_host
        self.timeout = timeout
        self.max_replicas = max_replicas
        self.command_allowlist = command_allowlist or []
        self._client: docker.DockerClient | None = None
        # The containers' cgroup files are this host's only when the engine is local.
        host = docker_host or os.environ.get("DOCKER_HOST", "")
        self.cgroup_root = cgroup_root if host == "" or host.startswith("unix://") else None

    # -- plumbing ---------------------------------------------------------------------------

    def client(self) -> docker.DockerClient:
        if self._client is None:
            if self.docker_host:
                self._client = docker.DockerClient(base_url=self.docker_host, timeout=30)
            else:
                self._client = docker.from_env(timeout=30)
        return self._client

    async def _call(
        self, operation: str, target: str, fn: Callable[[], OperationResult], timeout: float
    ) -> OperationResult:
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn), timeout)
        except TimeoutError:
            return OperationResult.failure(
                operation,
                target,
                "timeout",
                f"{operation} on {target} did not finish in {timeout:g}s",
            )
        except TargetMissing:
            return OperationResult.failure(
                operation, target, "not_found", f"no container or Compose service named {target!r}"
            )
        except NotFound as exc:
            return OperationResult.failure(operation, target, "not_found", _explain(exc))
        except (RequestsConnectionError, ReadTimeout) as exc:
            return OperationResult.failure(operation, target, "unreachable", self._unreachable(exc))
        except DockerException as exc:
            if (
                "connection" in str(exc).lower()
                or "fetching server api version" in str(exc).lower()
            ):
                return OperationResult.failure(
                    operation, target, "unreachable", self._unreachable(exc)
                )
            return OperationResult.failure(operation, target, "failed", _explain(exc))

    def _unreachable(self, exc: Exception) -> str:
        text = str(exc).lower()
        reason = next(
            (
                r
                for r in ("connection refused", "no such file", "permission denied", "timed out")
                if r in text
            ),
            type(exc).__name__,
        )
        where = self.docker_host or "the local socket (DOCKER_HOST unset)"
        return f"Docker engine unreachable at {where}: {reason}"

    def _containers(self, target: str) -> list[Container]:
        """The containers of a service: a container by name, else a Compose service's replicas."""
        client = self.client()
        with contextlib.suppress(NotFound):
            return [client.containers.get(target)]
        found = client.containers.list(all=True, filters={"label": f"{COMPOSE_SERVICE}={target}"})
        if not found:
            raise TargetMissing(target)
        return sorted(found, key=lambda c: int(c.labels.get(COMPOSE_NUMBER, "0") or 0))

    # -- the Backend protocol ---------------------------------------------------------------

    async def ping(self) -> OperationResult:
        def fn() -> OperationResult:
            self.client().ping()
            version = self.client().version().get("Version", "")
            return OperationResult(
                operation="ping",
                target="",
                ok=True,
                message=f"Docker {version}",
                data={"version": version},
            )

        return await self._call("ping", "", fn, 10)

    async def resolve(self, candidates: list[str]) -> Target | None:
        def fn() -> Target | None:
            client = self.client()
            for name in candidates:
                with contextlib.suppress(NotFound):
                    container = client.containers.get(name)
                    if container.name == name or (container.id or "").startswith(name):
                        return Target(
                            name=container.name or name,
                            kind="container",
                            containers=[container.name or name],
                            labels=container.labels,
                        )
                replicas = client.containers.list(
                    all=True, filters={"label": f"{COMPOSE_SERVICE}={name}"}
                )
                if replicas:
                    labels: dict[str, str] = {}
                    for c in replicas:
                        labels = {**c.labels, **labels}
                    return Target(
                        name=name,
                        kind="compose_service",
                        containers=sorted(c.name or "" for c in replicas),
                        labels=labels,
                    )
            return None

        try:
            return await asyncio.wait_for(asyncio.to_thread(fn), 30)
        except (TimeoutError, DockerException, RequestsConnectionError):
            return None

    async def run(self, operation: str, params: BaseModel) -> OperationResult:
        target = str(getattr(params, "target", ""))
        handlers: dict[str, tuple[Callable[[Any], OperationResult], float]] = {
            "health_check": (self._health_check, 30),
            "get_logs": (self._get_logs, 30),
            "check_resources": (self._check_resources, 30),
            "restart_service": (self._restart, 120),
            "scale_service": (self._scale, 180),
            "execute_command": (self._execute, 330),
        }
        if operation not in handlers:
            return OperationResult.failure(
                operation, target, "invalid", f"{operation} is not a Docker operation"
            )
        handler, timeout = handlers[operation]
        if operation == "health_check":
            return await self._health_with_probe(params)
        return await self._call(
            operation, target, lambda: handler(params), min(timeout, self.timeout * 3)
        )

    # -- read-only operations ---------------------------------------------------------------

    def _health_check(self, params: Any) -> OperationResult:
        facts = [container_facts(c) for c in self._containers(params.target)]
        healthy = bool(facts) and all(f["running"] and f["health"] != "unhealthy" for f in facts)
        states = ", ".join(f"{f['name']} {f['status']}" for f in facts)
        return OperationResult(
            operation="health_check",
            target=params.target,
            ok=True,
            message=states,
            data={"containers": facts, "healthy": healthy, "probe": None},
        )

    async def _health_with_probe(self, params: Any) -> OperationResult:
        result = await self._call(
            "health_check", params.target, lambda: self._health_check(params), 30
        )
        if not result.ok:
            return result
        labelled = [c for c in result.data["containers"] if c["labels"].get(HEALTH_URL)]
        url = labelled[0]["labels"][HEALTH_URL] if labelled else None
        for c in result.data["containers"]:
            c.pop("labels", None)
        if url:
            probe = await http_probe(url, params.probe_timeout)
            probe["container"] = labelled[0]["name"]
            result.data["probe"] = probe
            result.data["healthy"] = result.data["healthy"] and probe["ok"]
            result.message += f"; probe {probe['summary']}"
        return result

    def _get_logs(self, params: GetLogsParams) -> OperationResult:
        lines: list[str] = []
        for container in self._containers(params.target):
            raw: bytes = container.logs(tail=params.lines, stdout=True, stderr=True)
            lines += split_lines(raw.decode("utf-8", "replace"), params.lines)
        lines = lines[-params.lines :]
        errors = error_lines(lines)
        return OperationResult(
            operation="get_logs",
            target=params.target,
            ok=True,
            message=f"{len(lines)} lines, {len(errors)} error lines",
            data={"lines": len(lines), "error_lines": errors, "tail": lines[-20:]},
        )

    def _check_resources(self, params: Any) -> OperationResult:
        containers = self._containers(params.target)
        for container in containers:
            container.reload()
        running = [c for c in containers if c.status == "running"]
        figures = self._cgroup_figures(running)
        if figures is None:  # not on this host, or unreadable: the stats API (a second or so)
            figures = [_stats_figures(c) for c in running]
        measured = {c.id: f for c, f in zip(running, figures, strict=True)}
        usage = [
            {"name": c.name, "running": True, **measured[c.id]}
            if c.id in measured
            else {"name": c.name, "running": False}
            for c in containers
        ]
        summary = "; ".join(
            f"{u['name']} cpu {u.get('cpu_of_limit_percent', 0):.0f}% of limit, "
            f"mem {u.get('memory_percent', 0):.0f}%"
            for u in usage
            if u.get("running")
        )
        return OperationResult(
            operation="check_resources",
            target=params.target,
            ok=True,
            message=summary or "no running container",
            data={"containers": usage},
        )

    def _cgroup_figures(self, running: list[Container]) -> list[dict[str, Any]] | None:
        """Figures from the cgroup files, when every running container's are readable here."""
        if not running:
            return []
        if self.cgroup_root is None:
            return None
        readers = [
            cgroups.locate(
                str(c.id), c.attrs["HostConfig"].get("CgroupParent") or "", self.cgroup_root
            )
            for c in running
        ]
        found = [r for r in readers if r is not None]
        usages = cgroups.measure(found) if len(found) == len(readers) else None
        if usages is None:
            return None
        return [
            _figures(
                c,
                source="cgroup",
                cpu_percent=u.cpu_percent,
                online=os.cpu_count() or 1,
                periods=u.periods,
                throttled=u.throttled,
                throttled_total=u.throttled_total,
                memory=u.memory,
            )
            for c, u in zip(running, usages, strict=True)
        ]

    # -- mutating operations ----------------------------------------------------------------

    def _restart(self, params: RestartServiceParams) -> OperationResult:
        done = []
        for container in self._containers(params.target):
            container.reload()
            if container.status == "paused":
                container.unpause()
                done.append(f"unpaused {container.name}")
            elif container.status in ("running", "restarting"):
                container.restart(timeout=params.timeout)
                done.append(f"restarted {container.name}")
            else:
                container.start()
                done.append(f"started {container.name}")
        return OperationResult(
            operation="restart_service", target=params.target, ok=True, message="; ".join(done)
        )

    def _scale(self, params: ScaleServiceParams) -> OperationResult:
        if params.replicas > self.max_replicas:
            return OperationResult.failure(
                "scale_service",
                params.target,
                "refused",
                f"{params.replicas} replicas exceeds MAX_REPLICAS={self.max_replicas}",
            )
        replicas = self._containers(params.target)
        if not any(COMPOSE_SERVICE in c.labels for c in replicas):
            return OperationResult.failure(
                "scale_service",
                params.target,
                "invalid",
                f"{params.target} is a plain container, not a Compose service: it cannot be scaled",
            )
        before = len(replicas)
        client = self.client()
        template = replicas[0]
        numbers = [int(c.labels.get(COMPOSE_NUMBER, "0") or 0) for c in replicas]
        while len(replicas) < params.replicas:
            number = max(numbers, default=0) + 1
            numbers.append(number)
            replicas.append(_clone(client, template, number))
        for container in sorted(
            replicas, key=lambda c: int(c.labels.get(COMPOSE_NUMBER, "0") or 0)
        )[params.replicas :]:
            container.remove(force=True)
        return OperationResult(
            operation="scale_service",
            target=params.target,
            ok=True,
            message=f"{params.target}: {before} -> {params.replicas} replicas",
            data={"before": before, "after": params.replicas},
        )

    def _execute(self, params: ExecuteCommandParams) -> OperationResult:
        if not any(params.argv[: len(prefix)] == prefix for prefix in self.command_allowlist):
            return OperationResult.failure(
                "execute_command",
                params.target,
                "refused",
                f"argv {params.argv[:4]!r} matches no prefix of EXECUTE_COMMAND_ALLOWLIST",
            )
        container = self._containers(params.target)[0]
        exit_code, output = container.exec_run(params.argv, stdout=True, stderr=True)
        text = bytes(output or b"").decode("utf-8", "replace")[-OUTPUT_CAP:]  # type: ignore[arg-type]
        return OperationResult(
            operation="execute_command",
            target=params.target,
            ok=exit_code == 0,
            error=None if exit_code == 0 else "failed",
            message=f"exit code {exit_code}",
            data={"exit_code": exit_code, "output": text},
        )


def _explain(exc: Exception) -> str:
    if isinstance(exc, APIError):
        return str(exc.explanation or exc)[:300]
    return str(exc)[:300]


def _stats_figures(container: Container) -> dict[str, Any]:
    """Figures from one sample of Docker's stats API (which carries the previous one too)."""
    stats: dict[str, Any] = container.stats(stream=False)  # type: ignore[assignment]
    cpu, pre = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
        "total_usage", 0
    )
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
    throttle, pre_throttle = cpu.get("throttling_data", {}), pre.get("throttling_data", {})
    mem = stats.get("memory_stats", {})
    return _figures(
        container,
        source="stats API",
        cpu_percent=(cpu_delta / system_delta) * online * 100 if system_delta > 0 else 0.0,
        online=online,
        periods=throttle.get("periods", 0) - pre_throttle.get("periods", 0),
        throttled=throttle.get("throttled_periods", 0) - pre_throttle.get("throttled_periods", 0),
        throttled_total=throttle.get("throttled_periods", 0),
        memory=mem.get("usage", 0) - _page_cache(mem.get("stats") or {}),
    )


def _page_cache(stats: dict[str, Any]) -> int:
    """The reclaimable page cache that `docker stats` leaves out of a container's memory:
    `total_inactive_file` on cgroup v1, `inactive_file` on v2 (tools/cgroups.py does the same)."""
    return int(stats.get("total_inactive_file", stats.get("inactive_file", 0)))


def _figures(
    container: Container,
    *,
    source: str,
    cpu_percent: float,
    online: int,
    periods: int,
    throttled: int,
    throttled_total: int,
    memory: int,
) -> dict[str, Any]:
    """CPU against the quota, memory against the limit, and throttling."""
    host = container.attrs.get("HostConfig", {})
    limit_cpus = (host.get("NanoCpus") or 0) / 1e9
    if not limit_cpus and host.get("CpuQuota") and host.get("CpuPeriod"):
        limit_cpus = host["CpuQuota"] / host["CpuPeriod"]
    limit = limit_cpus or float(online)
    mem_limit = host.get("Memory") or 0
    return {
        "cpu_percent": round(cpu_percent, 1),
        "cpu_limit_cpus": limit_cpus or None,
        "cpu_of_limit_percent": round(cpu_percent / limit, 1) if limit else 0.0,
        "throttled_ratio": round(throttled / periods, 3) if periods > 0 else 0.0,
        "throttled_periods_total": throttled_total,
        "memory_usage": memory,
        "memory_limit": mem_limit or None,
        "memory_percent": round(memory / mem_limit * 100, 1) if mem_limit else 0.0,
        "source": source,
    }


def _clone(client: docker.DockerClient, template: Container, number: int) -> Container:
    """A new replica of a Compose service: same image, command, environment, labels and limits."""
    config = template.attrs["Config"]
    host = template.attrs["HostConfig"]
    labels = {**config.get("Labels", {}), COMPOSE_NUMBER: str(number)}
    project = labels.get(COMPOSE_PROJECT, "default")
    service = labels[COMPOSE_SERVICE]
    tmpfs = host.get("Tmpfs") or None
    container = client.containers.run(
        image=config["Image"],
        command=config.get("Cmd"),
        entrypoint=config.get("Entrypoint"),
        environment=config.get("Env"),
        labels=labels,
        name=f"{project}-{service}-{number}-{int(time.time() * 1000) % 100000}",
        detach=True,
        network_mode=host.get("NetworkMode") or "default",
        mem_limit=host.get("Memory") or None,
        nano_cpus=host.get("NanoCpus") or None,
        tmpfs=tmpfs,
        restart_policy=host.get("RestartPolicy") or None,
    )
    return container


async def http_probe(url: str, timeout: float = DEFAULT_PROBE_TIMEOUT) -> dict[str, Any]:
    """GET the health URL: 2xx is healthy. Records the status and the latency."""
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
        latency = (time.perf_counter() - started) * 1000
        ok = 200 <= response.status_code < 300
        body = response.text[:200]
        return {
            "url": url,
            "status": response.status_code,
            "ok": ok,
            "latency_ms": round(latency, 1),
            "error": None,
            "body": body,
            "summary": f"HTTP {response.status_code} in {latency:.0f} ms",
        }
    except httpx.TimeoutException:
        return _probe_failure(url, "timeout", f"no answer in {timeout:g}s", started)
    except httpx.HTTPError as exc:
        return _probe_failure(url, "connection", f"{type(exc).__name__}", started)


def _probe_failure(url: str, error: str, summary: str, started: float) -> dict[str, Any]:
    latency = (time.perf_counter() - started) * 1000
    return {
        "url": url,
        "status": None,
        "ok": False,
        "latency_ms": round(latency, 1),
        "error": error,
        "body": "",
        "summary": summary,
    }
