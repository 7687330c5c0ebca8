"""An in-process simulated backend (INFRA_BACKEND=fake): for benchmarks, demos and node tests.

It keeps a few simulated services whose state the operations change as Docker would, so the
whole graph can run without an engine. It is not used by the Docker integration tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from devops_agent.health import service_healthy
from devops_agent.state import Target
from devops_agent.tools.logs import error_lines
from devops_agent.tools.registry import OperationResult, Reconciliation


@dataclass
class FakeService:
    name: str
    status: str = "running"  # running | exited | paused
    exit_code: int = 0
    oom_killed: bool = False
    restart_count: int = 0
    ran_for_s: float = 3600.0
    replicas: int = 1
    compose: bool = False
    probe_status: int | None = 200  # None: the probe gets no answer at all (hung)
    probe_latency_ms: float = 5.0
    health: str = "none"  # what Docker's HEALTHCHECK would say
    logs: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    cpu_of_limit_percent: float = 5.0
    memory_percent: float = 10.0
    restarts: int = 0  # how many times an operation restarted it
    probe_timeouts: list[float] = field(default_factory=list)  # of every HTTP probe, in order
    sticky: bool = False  # a restart does not fix it (it exits again at once)

    def facts(self) -> dict[str, Any]:
        running = self.status == "running"
        return {
            "name": self.name,
            "status": self.status,
            "running": running,
            "paused": self.status == "paused",
            "restarting": False,
            "oom_killed": self.oom_killed,
            "exit_code": self.exit_code,
            "health": self.health,
            "restart_count": self.restart_count,
            "ran_for_s": None if running else self.ran_for_s,
            "memory_limit": 64 * 2**20,
        }


class FakeBackend:
    name = "fake"

    def __init__(self, services: list[FakeService] | None = None):
        self.services = {s.name: s for s in services or []}

    async def ping(self) -> OperationResult:
        return OperationResult(operation="ping", target="", ok=True, message="fake backend")

    async def resolve(self, candidates: list[str], project: str | None = None) -> Target | None:
        for name in candidates:
            svc = self.services.get(name)
            if svc:
                kind = "compose_service" if svc.compose else "container"
                names = [f"{name}-{i + 1}" for i in range(svc.replicas)] if svc.compose else [name]
                key = f"compose:fake/{name}" if svc.compose else f"container:{name}"
                return Target(name=name, kind=kind, containers=names, labels=svc.labels, key=key)
        return None

    async def snapshot(self, operation: str, params: BaseModel) -> dict[str, Any] | None:
        svc = self.services.get(str(getattr(params, "target", "")))
        if svc is None or operation not in ("restart_service", "scale_service", "execute_command"):
            return None
        return {"restarts": svc.restarts, "replicas": svc.replicas}

    async def reconcile(
        self, operation: str, params: BaseModel, before: dict[str, Any] | None, since: str | None
    ) -> Reconciliation:
        svc = self.services.get(str(getattr(params, "target", "")))
        if svc is None or not before or operation == "execute_command":
            return Reconciliation("unknown", "nothing to compare")
        if operation == "restart_service":
            done = svc.restarts > before["restarts"]
        else:
            done = svc.replicas == getattr(params, "replicas", None)
        return Reconciliation("done" if done else "not_done", f"{operation} on {svc.name}")

    async def run(self, operation: str, params: BaseModel) -> OperationResult:
        target = str(getattr(params, "target", ""))
        svc = self.services.get(target)
        if svc is None:
            return OperationResult.failure(
                operation, target, "not_found", f"no service named {target!r}"
            )
        ok = OperationResult
        if operation == "health_check":
            running = svc.status == "running"
            timeout = float(getattr(params, "probe_timeout", 3.0))
            svc.probe_timeouts.append(timeout)
            answers = svc.probe_status is not None and svc.probe_latency_ms <= timeout * 1000
            probe_ok = running and answers and 200 <= (svc.probe_status or 0) < 300
            probe = {
                "url": f"http://fake/{target}",
                "container": target,
                "status": svc.probe_status if running and answers else None,
                "ok": probe_ok,
                "latency_ms": svc.probe_latency_ms if answers else timeout * 1000,
                "error": None if running and answers else ("timeout" if running else "connection"),
                "summary": (
                    f"HTTP {svc.probe_status} in {svc.probe_latency_ms:.0f} ms"
                    if running and answers
                    else f"no answer in {timeout:g}s"
                    if running
                    else "connection refused"
                ),
            }
            return ok(
                operation=operation,
                target=target,
                ok=True,
                message=svc.status,
                data={
                    "containers": [svc.facts()],
                    "healthy": service_healthy([svc.facts()], probe),
                    "probe": probe,
                },
            )
        if operation == "get_logs":
            lines = svc.logs[-getattr(params, "lines", 200) :]
            return ok(
                operation=operation,
                target=target,
                ok=True,
                message=f"{len(lines)} lines",
                data={"lines": len(lines), "error_lines": error_lines(lines), "tail": lines[-20:]},
            )
        if operation == "check_resources":
            usage = {
                "name": target,
                "running": svc.status == "running",
                "cpu_limit_cpus": 1.0,
                "cpu_of_limit_percent": svc.cpu_of_limit_percent,
                "throttled_ratio": 0.0,
                "memory_limit": 64 * 2**20,
                "memory_percent": svc.memory_percent,
            }
            return ok(
                operation=operation,
                target=target,
                ok=True,
                message="ok",
                data={"containers": [usage]},
            )
        if operation == "restart_service":
            svc.restarts += 1
            if svc.sticky:
                svc.restart_count += 1
            else:
                svc.health = "none" if svc.health == "none" else "healthy"
                svc.status, svc.oom_killed, svc.exit_code, svc.probe_status = (
                    "running",
                    False,
                    0,
                    200,
                )
            svc.logs.append("started")
            return ok(operation=operation, target=target, ok=True, message=f"restarted {target}")
        if operation == "scale_service":
            before, svc.replicas = svc.replicas, int(getattr(params, "replicas", 1))
            return ok(
                operation=operation,
                target=target,
                ok=True,
                message=f"{before} -> {svc.replicas}",
                data={"before": before, "after": svc.replicas},
            )
        return OperationResult.failure(
            operation, target, "refused", f"{operation} is not simulated"
        )
