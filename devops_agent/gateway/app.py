"""The reference AI Command Gateway's HTTP API: intents in, the registry's typed results out.

Every route needs `Authorization: Bearer <GATEWAY_TOKEN>`. An operation outside this gateway's
own allowlist (GATEWAY_OPERATIONS) is refused, whatever the agent's policy said. A mutating
intent is recorded under its idempotency key before it acts and its result after, so a repeated
key gets the first result and never a second action, across restarts of the gateway too.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from devops_agent.gateway.forward import Forwarder, Intents
from devops_agent.gateway.store import IntentStore, digest
from devops_agent.redact import redact
from devops_agent.sources.watcher import EngineWatcher
from devops_agent.state import Ambiguity, Target, Unreachable
from devops_agent.tools.registry import OperationResult, Registry

log = logging.getLogger("devops_agent.gateway")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class IntentRequest(_Body):
    operation: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1, max_length=253)
    params: dict[str, Any] = Field(default_factory=dict)
    intent: str = Field("", max_length=4000, description="what is intended, and why")
    context: dict[str, Any] = Field(default_factory=dict, description="the incident")
    idempotency_key: str = Field(min_length=1, max_length=300)


class ResolveRequest(_Body):
    candidates: list[str] = Field(max_length=50)
    project: str | None = Field(None, max_length=253)


class SnapshotRequest(_Body):
    operation: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


class ReconcileRequest(SnapshotRequest):
    before: dict[str, Any] | None = None
    since: str | None = Field(None, max_length=64)
    idempotency_key: str | None = Field(None, max_length=300)


def create_app(
    registry: Registry,
    store: IntentStore,
    token: str,
    allowed: list[str],
    *,
    intents_on: Intents | None = None,
    watcher: EngineWatcher | None = None,
    forwarder: Forwarder | None = None,
) -> FastAPI:
    """The gateway in front of `registry` (its backend is this host's engine); with `watcher`
    and `forwarder`, it also watches that engine and forwards the alerts to the agent."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if forwarder is not None:
            forwarder.start()
        if watcher is not None:
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                await watcher.stop()
            if forwarder is not None:
                await forwarder.stop()

    app = FastAPI(title="devops-agent gateway", docs_url=None, redoc_url=None, lifespan=lifespan)
    locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def key_of(target: str, params: dict[str, Any]) -> str:
        """The target's identity as the watcher names it (the backend resolves the name)."""
        project = params.get("project")
        found = await registry.backend.resolve([target], project if project else None)
        return found.key if isinstance(found, Target) and found.key else f"container:{target}"

    def authorised(request: Request) -> None:
        given = request.headers.get("authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            credential.encode(), token.encode()
        ):
            raise HTTPException(401, "a bearer token (GATEWAY_TOKEN) is required")

    guard = [Depends(authorised)]

    @app.get("/health", dependencies=guard)
    async def health() -> dict[str, Any]:
        ping = await registry.backend.ping()
        return {
            "backend": registry.backend.name,
            "engine": {"ok": ping.ok, "message": ping.message},
            "allowed": allowed,
            "watcher": watcher.status() if watcher is not None else {"enabled": False},
            "forward": forwarder.status() if forwarder is not None else None,
        }

    @app.post("/resolve", dependencies=guard)
    async def resolve(body: ResolveRequest) -> dict[str, Any]:
        found = await registry.backend.resolve(body.candidates, body.project)
        if isinstance(found, Target):
            return {"target": found.model_dump(mode="json")}
        if isinstance(found, Ambiguity):
            return {"ambiguity": found.model_dump(mode="json")}
        if isinstance(found, Unreachable):
            return {"unreachable": found.message}
        return {"target": None}

    @app.post("/snapshot", dependencies=guard)
    async def snapshot(body: SnapshotRequest) -> dict[str, Any]:
        return {"snapshot": await registry.snapshot(body.operation, body.params)}

    @app.post("/reconcile", dependencies=guard)
    async def reconcile(body: ReconcileRequest) -> dict[str, Any]:
        if body.idempotency_key:
            seen = await store.get(body.idempotency_key)
            if seen and seen.status == "finished" and seen.result and seen.result.get("ok"):
                return {
                    "verdict": "done",
                    "detail": f"the gateway did it: {seen.result['message']}",
                }
        try:
            found = await registry.reconcile(body.operation, body.params, body.before, body.since)
        except ValueError as exc:
            return {"verdict": "unknown", "detail": str(exc)}
        return {"verdict": found.verdict, "detail": found.detail}

    @app.post("/intents", dependencies=guard)
    async def intents(body: IntentRequest) -> dict[str, Any]:
        params = {**body.params, "target": body.target}
        key = body.idempotency_key
        log.info(
            "intent %s %s (key %s): %s",
            body.operation,
            body.target,
            key,
            redact(body.intent)[:300],
        )
        if body.operation not in allowed:
            result = OperationResult.failure(
                body.operation,
                body.target,
                "refused",
                f"{body.operation} is not in this gateway's allowlist (GATEWAY_OPERATIONS)",
            )
            result.data["reason"] = "not_allowlisted"
            return {"key": key, "replayed": False, "result": result.model_dump(mode="json")}
        spec = registry.spec(body.operation)
        if spec is None or not spec.mutating:
            result = await registry.run(body.operation, params)  # a read: nothing to dedupe
            return {"key": key, "replayed": False, "result": result.model_dump(mode="json")}
        dig = digest(body.operation, params)
        async with locks[key]:
            seen = await store.get(key)
            if seen is not None and seen.digest != dig:
                raise HTTPException(409, "this idempotency key was used for another intent")
            if seen is not None and seen.status == "finished" and seen.result is not None:
                return {"key": key, "replayed": True, "result": seen.result}
            if seen is not None:  # begun by a gateway process that died before its end
                result = OperationResult.failure(
                    body.operation,
                    body.target,
                    "timeout",
                    "begun by an earlier run of this gateway that did not record its end",
                )
                result.data["in_flight"] = True
                return {"key": key, "replayed": True, "result": result.model_dump(mode="json")}
            await store.begin(key, body.operation, body.target, dig, body.intent, body.context)
            if intents_on is None:
                result = await registry.run(body.operation, params)
            else:  # what the engine does to it meanwhile is this intent's doing, not a fault
                with intents_on.acting(await key_of(body.target, params)):
                    result = await registry.run(body.operation, params)
            answer = result.model_dump(mode="json")
            await store.finish(key, answer)
        locks.pop(key, None)
        return {"key": key, "replayed": False, "result": answer}

    return app
