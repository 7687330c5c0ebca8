"""The Swarm backend (INFRA_BACKEND=swarm): the targets are Docker Swarm services.

Health comes from the service's tasks: the replicas it should run against those running, each
slot's latest task (its state, error and exit code) and how many tasks the slot went through
(its restarts); the HTTP probe of the service's label `devops-agent.health-url`. Logs are the
service's. A restart is a forced update (every task replaced), a scale sets the replicas, and
the scale's inverse sets them back. Both wait until the service has converged. It runs on a
manager node; the plumbing (deadlines, typed failures) is the Docker backend's.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import docker
from docker.errors import DockerException, NotFound
from docker.models.containers import Container
from docker.models.services import Service
from pydantic import BaseModel

from devops_agent.health import service_healthy
from devops_agent.operations import GetLogsParams, RestartServiceParams, ScaleServiceParams
from devops_agent.policy.checks import scale_findings
from devops_agent.state import Target
from devops_agent.tools.docker import DockerBackend
from devops_agent.tools.docker.backend import logs_result
from devops_agent.tools.docker.inspect import container_facts
from devops_agent.tools.docker.targets import TargetMissing
from devops_agent.tools.logs import split_lines
from devops_agent.tools.registry import OperationResult, Reconciliation

SERVICE_LABEL = "com.docker.swarm.service.name"
CONVERGE = 90.0  # seconds a restart or a scale waits for the service to converge
ENDED = ("complete", "failed", "shutdown", "rejected", "orphaned", "remove")


def service_of(client: docker.DockerClient, name: str) -> Service:
    """The service named exactly `name` (the engine's filter also matches prefixes)."""
    for service in client.services.list(filters={"name": name}):
        if service.name == name:
            return service
    raise TargetMissing(name)


def desired_replicas(service: Service) -> int | None:
    mode = service.attrs["Spec"].get("Mode", {})
    return int(mode["Replicated"].get("Replicas", 1)) if "Replicated" in mode else None


def _force_counter(service: Service) -> int:
    return int(service.attrs["Spec"]["TaskTemplate"].get("ForceUpdate", 0))


def _by_slot(service: Service) -> dict[str, list[dict[str, Any]]]:
    """The service's tasks per slot (node id for a global service), newest first."""
    slots: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in service.tasks():
        slots[str(task.get("Slot") or task.get("NodeID", ""))].append(task)
    for tasks in slots.values():
        tasks.sort(key=lambda t: t.get("CreatedAt", ""), reverse=True)
    return dict(slots)


class SwarmBackend(DockerBackend):
    """Operations on Docker Swarm services (on a manager node)."""

    name = "swarm"

    # -- plumbing ---------------------------------------------------------------------------

    def _containers(self, params: Any) -> list[Container]:
        """The containers of the service's running tasks that this engine runs."""
        service_of(self.client(), params.target)
        found = self.client().containers.list(filters={"label": f"{SERVICE_LABEL}={params.target}"})
        return sorted(found, key=lambda c: c.name or "")

    def _failure(self, operation: str, target: str, exc: Exception) -> OperationResult:
        if isinstance(exc, TargetMissing):
            return OperationResult.failure(
                operation, target, "not_found", f"no Swarm service named {target!r}"
            )
        return super()._failure(operation, target, exc)

    def _converged(self, name: str, replicas: int | None, forced: int | None) -> str:
        """Wait until every desired task runs (and a forced update has completed)."""
        deadline = time.monotonic() + CONVERGE
        state = "not converged"
        while time.monotonic() < deadline:
            service = service_of(self.client(), name)
            update = (service.attrs.get("UpdateStatus") or {}).get("State")
            tasks = [t for t in service.tasks() if t.get("DesiredState") == "running"]
            running = [t for t in tasks if t["Status"].get("State") == "running"]
            want = replicas if replicas is not None else desired_replicas(service)
            state = f"{len(running)}/{want} tasks running, update {update or 'none'}"
            updated = forced is None or update in (None, "completed")
            if updated and want is not None and len(running) == want == len(tasks):
                return state
            time.sleep(0.3)
        return f"{state} after {CONVERGE:g}s"

    # -- the Backend protocol ---------------------------------------------------------------

    async def ping(self) -> OperationResult:
        def fn() -> OperationResult:
            swarm = self.client().info().get("Swarm") or {}
            ok = swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))
            return OperationResult(
                operation="ping",
                target="",
                ok=ok,
                error=None if ok else "unreachable",
                message="Swarm manager" if ok else "this engine is not a Swarm manager",
            )

        return await self._call("ping", "", fn)

    async def resolve(self, candidates: list[str], project: str | None = None) -> Target | None:
        import asyncio

        def fn() -> Target | None:
            for name in candidates:
                try:
                    service = service_of(self.client(), name)
                except TargetMissing:
                    continue
                spec = service.attrs["Spec"]
                labels = {
                    **(spec["TaskTemplate"].get("ContainerSpec", {}).get("Labels") or {}),
                    **(spec.get("Labels") or {}),
                }
                tasks = [t for t in service.tasks() if t.get("DesiredState") == "running"]
                return Target(
                    name=name,
                    kind="swarm_service",
                    containers=sorted(f"{name}.{t.get('Slot', '')}" for t in tasks),
                    labels=labels,
                    key=f"swarm:{name}",
                )
            return None

        try:
            return await asyncio.wait_for(asyncio.to_thread(fn), 30)
        except (TimeoutError, DockerException, OSError):
            return None

    async def snapshot(self, operation: str, params: BaseModel) -> dict[str, Any] | None:
        import asyncio

        if operation not in ("restart_service", "scale_service"):
            return None
        target = str(getattr(params, "target", ""))

        def fn() -> dict[str, Any]:
            service = service_of(self.client(), target)
            return {"replicas": desired_replicas(service), "force_update": _force_counter(service)}

        try:
            return await asyncio.to_thread(fn)
        except (TargetMissing, DockerException):
            return None

    async def reconcile(
        self, operation: str, params: BaseModel, before: dict[str, Any] | None, since: str | None
    ) -> Reconciliation:
        import asyncio

        target = str(getattr(params, "target", ""))

        def fn() -> Reconciliation:
            service = service_of(self.client(), target)
            if before is None:
                return Reconciliation("unknown", "no snapshot was taken before the step")
            if operation == "restart_service":
                if _force_counter(service) > int(before.get("force_update", 0)):
                    return Reconciliation("done", f"{target}'s update was forced since")
                return Reconciliation("not_done", f"{target} was not updated since")
            if operation == "scale_service":
                want = getattr(params, "replicas", None)
                if desired_replicas(service) == want:
                    return Reconciliation("done", f"{target} has {want} replicas")
                if desired_replicas(service) == before.get("replicas"):
                    return Reconciliation("not_done", f"{target} still has its replicas")
            return Reconciliation("unknown", f"{operation} leaves no trace on a Swarm service")

        try:
            return await asyncio.to_thread(fn)
        except (TargetMissing, DockerException, NotFound) as exc:
            return Reconciliation("unknown", f"the engine did not answer: {exc}")

    # -- the operations ---------------------------------------------------------------------

    def _task_facts(self, name: str, slot: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
        """A slot's latest task as the health model reads a container."""
        task = tasks[0]
        status = task.get("Status") or {}
        state = status.get("State", "unknown")
        exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
        facts: dict[str, Any] = {
            "name": f"{name}.{slot}",
            "task": task.get("ID", "")[:12],
            "task_state": state,
            "status": "running" if state == "running" else "exited" if state in ENDED else state,
            "running": state == "running",
            "paused": False,
            "restarting": state not in ("running", *ENDED),
            "oom_killed": False,
            "exit_code": exit_code,
            "error": status.get("Err", ""),
            "health": "none",
            "restart_count": len(tasks) - 1,
            "ran_for_s": None,
            "memory_limit": 0,
        }
        cid = (status.get("ContainerStatus") or {}).get("ContainerID")
        if cid:  # the task's container, when this engine runs it: OOM, health, run time
            try:
                local = container_facts(self.client().containers.get(cid))
            except NotFound:
                return facts
            for field in ("oom_killed", "health", "ran_for_s", "memory_limit", "paused"):
                facts[field] = local[field]
            facts["running"] = facts["running"] and not local["paused"]
        return facts

    def _health_check(self, params: Any) -> OperationResult:
        service = service_of(self.client(), params.target)
        spec = service.attrs["Spec"]
        labels = {
            **(spec["TaskTemplate"].get("ContainerSpec", {}).get("Labels") or {}),
            **(spec.get("Labels") or {}),
        }
        want = desired_replicas(service)
        slots = _by_slot(service)
        current = {s: t for s, t in slots.items() if any(x["DesiredState"] == "running" for x in t)}
        chosen = current or slots
        facts = [self._task_facts(params.target, s, t) for s, t in sorted(chosen.items())]
        for f in facts:
            f["labels"] = labels
        running = sum(1 for f in facts if f["running"])
        healthy = service_healthy(facts, None) and (want is None or running >= want)
        return OperationResult(
            operation="health_check",
            target=params.target,
            ok=True,
            message=f"{running}/{want if want is not None else len(facts)} tasks running; "
            + ", ".join(f"{f['name']} {f['task_state']}" for f in facts),
            data={
                "containers": facts,
                "desired": want,
                "running": running,
                "healthy": healthy,
                "probe": None,
            },
        )

    def _get_logs(self, params: GetLogsParams) -> OperationResult:
        service = service_of(self.client(), params.target)
        raw = b"".join(service.logs(stdout=True, stderr=True, tail=str(params.lines), follow=False))
        lines = split_lines(raw.decode("utf-8", "replace"), params.lines)[-params.lines :]
        return logs_result(params.target, lines)

    def _restart(self, params: RestartServiceParams) -> OperationResult:
        service = service_of(self.client(), params.target)
        service.force_update()
        state = self._converged(params.target, None, _force_counter(service) + 1)
        return OperationResult(
            operation="restart_service",
            target=params.target,
            ok=True,
            message=f"forced an update of {params.target}: {state}",
        )

    def _scale(self, params: ScaleServiceParams) -> OperationResult:
        service = service_of(self.client(), params.target)
        before = desired_replicas(service)
        if before is None:
            return OperationResult.failure(
                "scale_service", params.target, "invalid", f"{params.target} is a global service"
            )
        refused = scale_findings(params.replicas, before, self.max_replicas, None)
        if refused:
            result = OperationResult.failure(
                "scale_service", params.target, "refused", "; ".join(f.message for f in refused)
            )
            result.data["reason"] = refused[0].code
            return result
        service.scale(params.replicas)
        state = self._converged(params.target, params.replicas, None)
        return OperationResult(
            operation="scale_service",
            target=params.target,
            ok=True,
            message=f"{params.target}: {before} -> {params.replicas} replicas ({state})",
            data={"before": before, "after": params.replicas},
        )

    def _execute(self, params: Any) -> OperationResult:
        return OperationResult.failure(
            "execute_command", params.target, "invalid", "execute_command is not a Swarm operation"
        )
