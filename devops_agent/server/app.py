"""The FastAPI app factory and its lifespan: the agent, the run manager, the loops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import devops_agent.memory.runs  # noqa: F401  (registers the run tables before the schema is set up)
from devops_agent import telemetry
from devops_agent.config import Settings
from devops_agent.context import AgentContext
from devops_agent.dburl import DatabaseUrl
from devops_agent.memory.run_repo import RunRepo
from devops_agent.memory.slack_messages import SlackMessages
from devops_agent.memory.users import Users
from devops_agent.monitoring import Monitor
from devops_agent.orchestration.intake import Intake
from devops_agent.orchestration.manager import RunManager
from devops_agent.orchestration.metrics import MeteredHub, Metrics
from devops_agent.orchestration.relay import Relay
from devops_agent.orchestration.slack import SlackChannel
from devops_agent.runner import open_agent
from devops_agent.server import (
    api_audit,
    api_control,
    api_identity,
    api_ops,
    api_runs,
    api_users,
    api_webhook,
    ui,
)
from devops_agent.server import slack as slack_routes
from devops_agent.server.auth import Authenticator, AuthMiddleware, load_api_token
from devops_agent.server.deps import Services
from devops_agent.server.limits import BodyLimitMiddleware
from devops_agent.server.mcp_http import McpEndpoint, McpMiddleware
from devops_agent.server.ratelimit import RateLimitMiddleware
from devops_agent.server.schema import document_errors
from devops_agent.server.sessions import Sessions, load_session_key
from devops_agent.sources.watcher import EngineWatcher

log = logging.getLogger(__name__)
DEFAULT_MAX_CONCURRENT_RUNS = 8


def max_concurrent_runs(settings: Settings) -> int:
    """MAX_CONCURRENT_RUNS (default 8)."""
    return max(1, settings.max_concurrent_runs)


def public_url(settings: Settings) -> str:
    """Where people reach this service (for links in notifications)."""
    configured = getattr(settings, "public_url", None)
    if configured:
        return str(configured).rstrip("/")
    host = settings.api_host if settings.api_host not in ("0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.api_port}"


def approval_sweep_interval(timeout: float) -> float:
    return min(30.0, max(0.5, timeout / 4))


async def _sweep(manager: RunManager, timeout: float) -> None:
    """Expire runs that waited for approval longer than APPROVAL_TIMEOUT."""
    while True:
        try:
            expired = await manager.expire_overdue()
            if expired:
                log.info("%d run(s) expired waiting for approval", expired)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("approval sweeper failed")
        await asyncio.sleep(approval_sweep_interval(timeout))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics
    telemetry.configure(
        settings.otel_exporter_otlp_endpoint, settings.service_name, settings.service_version
    )
    try:
        async with _serving(app, settings, metrics):
            yield
    finally:
        await app.state.mcp.close()
        telemetry.shutdown()


@asynccontextmanager
async def _serving(app: FastAPI, settings: Settings, metrics: Metrics) -> AsyncIterator[None]:
    async with open_agent(AgentContext.from_settings(settings)) as agent:
        repo = RunRepo.from_url(settings.resolved_database_url)
        await repo.setup()
        hub = MeteredHub(metrics, repo)  # an EventHub that also counts run metrics
        base = public_url(settings)
        slack = (
            SlackChannel(settings, SlackMessages(repo.engine), base)
            if settings.slack_enabled
            else None
        )
        manager = RunManager(
            agent,
            repo,
            hub,
            metrics,
            max_concurrent=max_concurrent_runs(settings),
            resume_url=lambda run_id: f"{base}/runs/{run_id}/resume",
            slack=slack,
        )
        intake = Intake(repo, manager, metrics)
        monitor = Monitor(
            settings.targets,
            settings.monitoring_interval,
            intake.accept,
            timeout=settings.probe_timeout,
            on_probe=lambda name, ok: metrics.monitor_probes.labels(
                target=name, result="ok" if ok else "failed"
            ).inc(),
        )
        relay = None
        if repo.postgres:  # replicas may share the database: relay run events between them
            relay = Relay(DatabaseUrl(settings.resolved_database_url).conninfo, manager.owner, hub)
            hub.relay = relay.forward
            relay.start()
        watcher = None
        if settings.watch_events and settings.infra_backend == "docker":
            watcher = EngineWatcher(
                settings.docker_host,
                intake.accept,
                agent.ctx.store.activity,
                settings.crash_loop_window,
            )
        app.state.services = Services(
            settings, agent, repo, manager, intake, monitor, hub, metrics, watcher
        )
        await repo.backfill_deadlines(settings.approval_timeout)
        manager.launch()
        recovered = await manager.recover()
        if recovered:
            log.info("recovered %d run(s) from the last checkpoint", recovered)
        sweeper = asyncio.create_task(_sweep(manager, settings.approval_timeout), name="sweeper")
        if monitor.targets:
            monitor.start()
        if watcher is not None:
            watcher.start()
        # The modules and objects built so far live as long as the process: moving them out of
        # the collector's reach turns 60 ms full collections (a webhook's p99) into short ones.
        gc.collect()
        gc.freeze()
        log.info("serving on %s (reasoner %s)", base, agent.ctx.reasoner.name)
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await monitor.stop()
            if watcher is not None:
                await watcher.stop()
            await manager.shutdown()
            if relay is not None:
                await relay.stop()
            await repo.close()
            await app.state.users.close()
            app.state.services = None


class HttpMetricsMiddleware:
    """Count requests and time them, by route template (not raw path: bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def sending(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(route, code, scope["method"], elapsed)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": ".".join(str(p) for p in err.get("loc", ())), "msg": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"loc": "body", "msg": "invalid"}
    return JSONResponse({"detail": f"{first['loc']}: {first['msg']}", "errors": errors}, 422)


async def _storage_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("storage error: %s", type(exc).__name__)
    return JSONResponse({"detail": "storage unavailable; retry later"}, 503)


def http_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry of HTTP requests (FastAPI 0.165+), only when an OTLP endpoint
    is configured: unconfigured, it still asks the OpenTelemetry API (which reads the
    environment) on every request, a tenth of the webhook's time under load (issue 13). The
    keyword arguments for FastAPI(); none on a FastAPI without native telemetry."""
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return {}
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(settings: Settings) -> FastAPI:
    """The app for these settings. Reads (or generates) the API token; connects nothing yet."""
    api_token = load_api_token(settings)
    webhook_token = settings.webhook_token.get_secret_value() if settings.webhook_token else None
    app = FastAPI(
        title="DevOps AI Agent",
        version=settings.service_version,
        description="Alertmanager webhooks in, remediated incidents out, with a human in the loop.",
        lifespan=lifespan,
        **http_telemetry(),
    )
    app.state.settings = settings
    app.state.metrics = metrics = Metrics()
    app.state.services = None
    app.router.routes.insert(0, api_webhook.route)  # first: the hot path is matched first
    app.include_router(api_ops.router)
    app.include_router(api_runs.router)
    app.include_router(api_control.router)
    app.include_router(api_audit.router)
    app.include_router(api_users.router)
    app.include_router(ui.router)
    app.mount("/ui/static", ui.static, name="ui-static")
    app.include_router(api_identity.router)
    app.include_router(slack_routes.router)
    document_errors(app)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(SQLAlchemyError, _storage_error)
    # Outermost first at runtime: metrics see every answer, auth runs before the body is read.
    app.add_middleware(BodyLimitMiddleware)
    users = app.state.users = Users.from_url(settings.resolved_database_url)
    app.state.sessions = sessions = Sessions(load_session_key(settings))
    authenticator = app.state.authenticator = Authenticator(api_token, users, sessions, settings)
    app.add_middleware(AuthMiddleware, authenticator=authenticator, webhook_token=webhook_token)
    # /mcp authenticates its own callers (users' tokens and roles), outside AGENT_API_TOKEN's.
    app.state.mcp = mcp = McpEndpoint(app, authenticator)
    app.add_middleware(McpMiddleware, endpoint=mcp)
    app.add_middleware(
        RateLimitMiddleware,
        rate=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
        credentials={"api": api_token, "webhook": webhook_token},
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return app
