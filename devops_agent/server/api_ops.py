"""The operational endpoints kept from the original design: health, status, monitoring, debug."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from devops_agent.errors import short_error
from devops_agent.labels import HEALTH_URL
from devops_agent.memory.db import Pattern
from devops_agent.redact import redact_data
from devops_agent.server import responses
from devops_agent.server.api_control import kill_switch
from devops_agent.server.deps import Services, services
from devops_agent.tools.docker import DockerBackend

router = APIRouter()
Svc = Annotated[Services, Depends(services)]


@router.get("/health", summary="Liveness (no token)", response_model=responses.Health)
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _database(svc: Services) -> dict[str, Any]:
    kind = svc.settings.resolved_database_url.split(":", 1)[0].split("+", 1)[0]
    try:
        await svc.repo.ping()
    except (SQLAlchemyError, OSError) as exc:
        return {"kind": kind, "ok": False, "error": type(exc).__name__}
    return {"kind": kind, "ok": True}


@router.get(
    "/status",
    summary="Version, reasoner, backend, database, monitoring and run counts",
    response_model=responses.Status,
)
async def status(svc: Svc) -> dict[str, Any]:
    settings = svc.settings
    ping = await svc.agent.ctx.registry.backend.ping()
    database = await _database(svc)
    counts = await svc.repo.counts() if database["ok"] else {}
    return {
        "service": settings.service_name,
        "version": settings.service_version,
        "environment": settings.environment,
        "reasoner": svc.agent.ctx.reasoner.name,
        "safety_mode": settings.safety_mode,
        "kill_switch": (await kill_switch(svc)).model_dump() if database["ok"] else None,
        "backend": {
            "name": svc.agent.ctx.registry.backend.name,
            "reachable": ping.ok,
            "detail": ping.message,
        },
        "database": database,
        "monitoring": {
            "running": svc.monitor.running,
            "targets": len(svc.monitor.targets),
            "cycles": svc.monitor.cycles,
        },
        "watcher": svc.watcher.status() if svc.watcher else {"enabled": False},
        "runs": counts,
        "notifications": {
            "url_set": bool(settings.notify_webhook_url),
            "backlog": await svc.manager.deliverer.outbox.backlog() if database["ok"] else None,
        },
    }


@router.get(
    "/monitoring/status",
    summary="The monitoring loop and its targets",
    response_model=responses.MonitoringStatus,
)
async def monitoring_status(svc: Svc) -> dict[str, Any]:
    return svc.monitor.status()


@router.post(
    "/control/start-monitoring",
    summary="Start the monitoring loop",
    response_model=responses.MonitoringStatus,
)
async def start_monitoring(svc: Svc) -> dict[str, Any]:
    started = svc.monitor.start()
    return {"started": started, **svc.monitor.status()}


@router.post(
    "/control/stop-monitoring",
    summary="Stop the monitoring loop",
    response_model=responses.MonitoringStatus,
)
async def stop_monitoring(svc: Svc) -> dict[str, Any]:
    stopped = await svc.monitor.stop()
    return {"stopped": stopped, **svc.monitor.status()}


@router.post(
    "/monitoring/cycle",
    summary="Run one monitoring cycle now",
    response_model=responses.MonitoringCycle,
)
async def monitoring_cycle(svc: Svc) -> dict[str, Any]:
    return await svc.monitor.cycle()


def _docker_facts(backend: DockerBackend) -> dict[str, Any]:
    client = backend.client()
    info = client.info()
    containers = [
        {
            "name": c.name,
            "status": c.status,
            "image": (c.attrs.get("Config") or {}).get("Image"),
            "health_url": (c.labels or {}).get(HEALTH_URL),
            "compose_service": (c.labels or {}).get("com.docker.compose.service"),
        }
        for c in client.containers.list(all=True)
    ]
    return {
        "server_version": info.get("ServerVersion"),
        "containers_running": info.get("ContainersRunning"),
        "containers": containers,
    }


@router.get(
    "/debug/docker", summary="What the Docker backend sees", response_model=responses.DockerView
)
async def debug_docker(svc: Svc) -> dict[str, Any]:
    backend = svc.agent.ctx.registry.backend
    ping = await backend.ping()
    found: dict[str, Any] = {"backend": backend.name, "reachable": ping.ok, "detail": ping.message}
    if ping.ok and isinstance(backend, DockerBackend):
        try:
            found.update(await asyncio.wait_for(asyncio.to_thread(_docker_facts, backend), 30))
        except Exception as exc:  # debugging aid: report, never fail
            found["error"] = short_error(exc)
    return found


def pattern_view(row: Pattern) -> dict[str, Any]:
    return {
        "service": row.service,
        "category": row.category,
        "operation": row.operation,
        "held": row.successes,
        "did_not_hold": row.failures,
        "approved_held_in_a_row": row.approved_held,
        "promoted": row.promoted,
        "changed_at": row.changed_at,
    }


@router.get(
    "/patterns",
    summary="What was learned, and the autonomy ladder's promotions",
    response_model=responses.Patterns,
)
async def patterns(svc: Svc) -> dict[str, Any]:
    rows = await svc.agent.ctx.store.patterns()
    return {"patterns": [pattern_view(r) for r in rows]}


@router.get(
    "/orchestrator/status",
    summary="The run manager and the recent actions",
    response_model=responses.OrchestratorStatus,
)
async def orchestrator_status(svc: Svc) -> dict[str, Any]:
    actions = await svc.agent.ctx.store.ledger(limit=50)
    return {
        "max_concurrent_runs": svc.manager.max_concurrent,
        "executing": sorted(svc.manager.executing),
        "queued": svc.manager.queued,
        "runs": await svc.repo.counts(),
        "recent_actions": [
            {
                "run_id": a.run_id,
                "attempt": a.attempt,
                "step": a.step,
                "operation": a.operation,
                "target": a.target,
                "status": a.status,
                "output": redact_data(a.output),
                "started_at": a.started_at,
                "finished_at": a.finished_at,
            }
            for a in actions
        ],
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(svc: Svc) -> Response:
    for name, count in (await svc.repo.counts()).items():
        svc.metrics.runs_by_status.labels(status=name).set(count)
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)
