"""The Docker backend: the registry's operations on a real Docker engine (DOCKER_HOST honoured).

Every SDK call blocks, so each operation runs in a worker thread under a deadline. Failures come
back as typed OperationResults (unreachable, not_found, timeout, invalid, failed), never raised.
A mutating call that outlives its deadline is reported `in_flight`, for the caller to reconcile,
never as a clean timeout while the engine goes on.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.tls
from docker.errors import DockerException, NotFound
from docker.models.containers import Container
from pydantic import BaseModel
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout

from devops_agent.health import http_probe, service_healthy
from devops_agent.labels import COMPOSE_SERVICE, HEALTH_URL
from devops_agent.operations import (
    ExecuteCommandParams,
    GetLogsParams,
    RestartServiceParams,
    ScaleServiceParams,
)
from devops_agent.policy.checks import command_finding, scale_findings
from devops_agent.state import Ambiguity, Target
from devops_agent.tools import cgroups
from devops_agent.tools.docker import reconcile as reconciling
from devops_agent.tools.docker.clone import clone
from devops_agent.tools.docker.command import run_command
from devops_agent.tools.docker.inspect import container_facts
from devops_agent.tools.docker.resources import cgroup_figures, stats_figures
from devops_agent.tools.docker.targets import (
    TargetAmbiguous,
    TargetMissing,
    containers_of,
    lookup,
    number,
    target_of,
)
from devops_agent.tools.logs import error_lines, split_lines
from devops_agent.tools.registry import ErrorKind, OperationResult, Reconciliation

# Seconds each operation may take in its worker thread (an outer bound: the SDK's own HTTP
# timeout is 30 s per request, execute_command has its own `timeout`).
DEADLINES = {
    "health_check": 30.0,
    "get_logs": 30.0,
    "check_resources": 30.0,
    "restart_service": 120.0,
    "scale_service": 180.0,
    "execute_command": 330.0,
}
MUTATING = ("restart_service", "scale_service", "execute_command")


class DockerBackend:
    """Operations on Docker containers and Compose services."""

    name = "docker"

    def __init__(
        self,
        docker_host: str | None = None,
        max_replicas: int = 10,
        command_allowlist: list[list[str]] | None = None,
        cgroup_root: Path | None = cgroups.ROOT,
        timeout: float | None = None,
        tls: docker.tls.TLSConfig | None = None,
    ) -> None:
        self.docker_host = docker_host
        self.tls = tls
        self.timeout = timeout  # a bound below every operation's own deadline (DEADLINES)
        self.max_replicas = max_replicas
        self.command_allowlist = command_allowlist or []
        self._client: docker.DockerClient | None = None
        # The containers' cgroup files and processes are this host's only when the engine is.
        host = docker_host or os.environ.get("DOCKER_HOST", "")
        self.local = host == "" or host.startswith("unix://")
        self.cgroup_root = cgroup_root if self.local else None

    # -- plumbing ---------------------------------------------------------------------------

    def client(self) -> docker.DockerClient:
        if self._client is None:
            if self.docker_host:
                self._client = self._connect(self.docker_host)
            else:
                self._client = docker.from_env(timeout=30)
        return self._client

    def _connect(self, url: str) -> docker.DockerClient:
        if self.tls is None:
            return docker.DockerClient(base_url=url, timeout=30)
        # With TLS, the engine's own CA must be the one verified against: requests lets
        # REQUESTS_CA_BUNDLE (often set to the system bundle) override a session's CA, so the
        # session must not read the environment. The API version is asked for after that.
        client = docker.DockerClient(base_url=url, timeout=30, tls=self.tls, version="1.24")
        api: Any = client.api  # the SDK's own attributes, not in its type stubs
        api.trust_env = False
        api._version = api._retrieve_server_version()
        return client

    async def _call(
        self, operation: str, target: str, fn: Callable[[], OperationResult]
    ) -> OperationResult:
        deadline = min(DEADLINES.get(operation, 30.0), self.timeout or float("inf"))
        work = asyncio.ensure_future(asyncio.to_thread(fn))
        work.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, even late
        try:
            return await asyncio.wait_for(asyncio.shield(work), deadline)
        except TimeoutError:
            result = OperationResult.failure(
                operation,
                target,
                "timeout",
                f"{operation} on {target} did not finish in {deadline:g}s",
            )
            if operation in MUTATING:
                result.data["in_flight"] = True  # the engine may still be doing it
                result.message += "; it may still be going on: reconcile before trusting it"
            return result
        except Exception as exc:
            return self._failure(operation, target, exc)

    def _failure(self, operation: str, target: str, exc: Exception) -> OperationResult:
        kind: ErrorKind
        if isinstance(exc, TargetMissing):
            kind, message = "not_found", f"no container or Compose service named {target!r}"
        elif isinstance(exc, TargetAmbiguous):
            kind, message = "invalid", str(exc)
        elif isinstance(exc, NotFound):
            kind, message = "not_found", _explain(exc)
        elif isinstance(exc, RequestsConnectionError | ReadTimeout) or (
            isinstance(exc, DockerException)
            and any(w in str(exc).lower() for w in ("connection", "fetching server api version"))
        ):
            kind, message = "unreachable", self._unreachable(exc)
        elif isinstance(exc, DockerException):
            kind, message = "failed", _explain(exc)
        else:
            raise exc
        return OperationResult.failure(operation, target, kind, message)

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

    def _containers(self, params: Any) -> list[Container]:
        return containers_of(self.client(), params.target, params.project)

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

        return await self._call("ping", "", fn)

    async def resolve(
        self, candidates: list[str], project: str | None = None
    ) -> Target | Ambiguity | None:
        """The first candidate that names exactly one target; an ambiguity when the only
        names that matched mean several; None when none matched (or the engine is away)."""

        def fn() -> Target | Ambiguity | None:
            ambiguous: Ambiguity | None = None
            for name in candidates:
                found = lookup(self.client(), name, project)
                if isinstance(found, Ambiguity):
                    ambiguous = ambiguous or found
                elif found:
                    return target_of(name, found)
            return ambiguous

        try:
            return await asyncio.wait_for(asyncio.to_thread(fn), 30)
        except (TimeoutError, DockerException, RequestsConnectionError):
            return None

    async def run(self, operation: str, params: BaseModel) -> OperationResult:
        target = str(getattr(params, "target", ""))
        handlers: dict[str, Callable[[Any], OperationResult]] = {
            "get_logs": self._get_logs,
            "check_resources": self._check_resources,
            "restart_service": self._restart,
            "scale_service": self._scale,
            "execute_command": self._execute,
        }
        if operation == "health_check":
            return await self._health_with_probe(params)
        if operation not in handlers:
            return OperationResult.failure(
                operation, target, "invalid", f"{operation} is not a Docker operation"
            )
        return await self._call(operation, target, lambda: handlers[operation](params))

    async def snapshot(self, operation: str, params: BaseModel) -> dict[str, Any] | None:
        """What the step would change, before it runs (for reconcile and the inverse)."""
        target, project = str(getattr(params, "target", "")), getattr(params, "project", None)
        return await asyncio.to_thread(
            reconciling.snapshot, self.client(), operation, target, project
        )

    async def reconcile(
        self, operation: str, params: BaseModel, before: dict[str, Any] | None, since: str | None
    ) -> Reconciliation:
        """Whether an interrupted step happened, from the engine's state against `before`."""
        try:
            return await asyncio.to_thread(
                reconciling.reconcile, self.client(), operation, params, before, since
            )
        except DockerException as exc:
            return Reconciliation("unknown", f"the engine did not answer: {_explain(exc)}")

    # -- read-only operations ---------------------------------------------------------------

    def _health_check(self, params: Any) -> OperationResult:
        facts = [container_facts(c) for c in self._containers(params)]
        states = ", ".join(f"{f['name']} {f['status']}" for f in facts)
        return OperationResult(
            operation="health_check",
            target=params.target,
            ok=True,
            message=states,
            data={"containers": facts, "healthy": service_healthy(facts, None), "probe": None},
        )

    async def _health_with_probe(self, params: Any) -> OperationResult:
        result = await self._call("health_check", params.target, lambda: self._health_check(params))
        if not result.ok:
            return result
        containers = result.data["containers"]
        labelled = [c for c in containers if c["labels"].get(HEALTH_URL)]
        url = labelled[0]["labels"][HEALTH_URL] if labelled else None
        for c in containers:
            c.pop("labels", None)
        if url:
            probe = await http_probe(url, params.probe_timeout)
            probe["container"] = labelled[0]["name"]
            result.data["probe"] = probe
            result.data["healthy"] = service_healthy(containers, probe)
            result.message += f"; probe {probe['summary']}"
        return result

    def _get_logs(self, params: GetLogsParams) -> OperationResult:
        lines: list[str] = []
        for container in self._containers(params):
            raw: bytes = container.logs(tail=params.lines, stdout=True, stderr=True)
            lines += split_lines(raw.decode("utf-8", "replace"), params.lines)
        return logs_result(params.target, lines[-params.lines :])

    def _check_resources(self, params: Any) -> OperationResult:
        containers = self._containers(params)
        for container in containers:
            container.reload()
        running = [c for c in containers if c.status == "running"]
        figures = cgroup_figures(running, self.cgroup_root)
        if figures is None:  # not on this host, or unreadable: the stats API (a second or so)
            figures = [stats_figures(c) for c in running]
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

    # -- mutating operations ----------------------------------------------------------------

    def _restart(self, params: RestartServiceParams) -> OperationResult:
        done = []
        for container in self._containers(params):
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
        replicas = self._containers(params)
        refused = scale_findings(params.replicas, len(replicas), self.max_replicas, None)
        if refused:
            result = OperationResult.failure(
                "scale_service", params.target, "refused", "; ".join(f.message for f in refused)
            )
            result.data["reason"] = refused[0].code
            return result
        if not any(COMPOSE_SERVICE in c.labels for c in replicas):
            return OperationResult.failure(
                "scale_service",
                params.target,
                "invalid",
                f"{params.target} is a plain container, not a Compose service: it cannot be scaled",
            )
        before = len(replicas)
        template = replicas[0]
        highest = max(number(c) for c in replicas)
        while len(replicas) < params.replicas:
            highest += 1
            replicas.append(clone(self.client(), template, highest))
        # Scaling down removes the newest replicas (highest numbers, latest created) first.
        newest_first = sorted(
            replicas, key=lambda c: (number(c), c.attrs.get("Created", "")), reverse=True
        )
        for container in newest_first[: max(0, len(replicas) - params.replicas)]:
            container.stop(timeout=10)
            container.remove(force=True)
        return OperationResult(
            operation="scale_service",
            target=params.target,
            ok=True,
            message=f"{params.target}: {before} -> {params.replicas} replicas",
            data={"before": before, "after": params.replicas},
        )

    def _execute(self, params: ExecuteCommandParams) -> OperationResult:
        refused = command_finding(params.argv, self.command_allowlist)
        if refused:
            return OperationResult.failure(
                "execute_command", params.target, "refused", refused.message
            )
        container = self._containers(params)[0]
        return run_command(self.client().api, container, params, kill=self.local)


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)[:300]


def logs_result(target: str, lines: list[str]) -> OperationResult:
    """get_logs' answer for `lines` (the newest last), the same for containers and services."""
    errors = error_lines(lines)
    return OperationResult(
        operation="get_logs",
        target=target,
        ok=True,
        message=f"{len(lines)} lines, {len(errors)} error lines",
        data={"lines": len(lines), "error_lines": errors, "tail": lines[-20:]},
    )
