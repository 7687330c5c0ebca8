"""root_cause: gather evidence with the read-only operations, then ask the reasoner.

The target's health probe is quick first (PROBE_QUICK_TIMEOUT); when it gets no answer, nodes/hang.py
decides whether the other evidence confirms a hang or the probe must wait PROBE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from devops_agent.context import AgentContext
from devops_agent.nodes.common import investigation, target_dump
from devops_agent.nodes.hang import confirmed_hang, probe_timed_out
from devops_agent.state import Evidence, IncidentState, RunState, Target, utcnow
from devops_agent.tools.prometheus import service_evidence
from devops_agent.tools.registry import OperationResult

# host:port, or "to/host/upstream/dependency <name>" in an error line. Linear, anchored on words.
_NAMED_HOST = re.compile(
    r"\b([a-z0-9][a-z0-9_.-]{0,62}):\d{2,5}\b|\b(?:to|host|upstream|dependency)\s+"
    r"['\"]?([a-z0-9][a-z0-9_.-]{0,62})",
    re.IGNORECASE,
)
MAX_DEPENDENCIES = 5


def _evidence(result: OperationResult) -> dict[str, Any]:
    summary = f"{result.operation} {result.target}: {result.message}"
    return Evidence(
        source=result.operation,
        target=result.target,
        summary=summary,
        ok=result.ok,
        data=result.data,
    ).model_dump(mode="json")


def names_in(lines: list[str]) -> list[str]:
    """Service names that error lines point at (host:port, 'connection refused to db', ...)."""
    found: list[str] = []
    for line in lines:
        for match in _NAMED_HOST.finditer(line[:500]):
            name = (match.group(1) or match.group(2) or "").rstrip(".")
            if (
                name
                and not name.replace(".", "").isdigit()
                and name not in ("localhost", "127.0.0.1")
            ):
                found.append(name)
    return list(dict.fromkeys(found))


def recently(ctx: AgentContext) -> str:
    """Since when another run's action on a dependency still explains a caller's state: the
    time it takes to validate a fix and see it hold."""
    s = ctx.settings
    span = s.validate_timeout + s.validate_settle + 2 * s.probe_timeout
    return (datetime.now(UTC) - timedelta(seconds=span)).isoformat(timespec="microseconds")


async def _dependencies(
    ctx: AgentContext, run_id: str, target: Target, log_errors: list[str]
) -> list[dict[str, Any]]:
    """The health of the services the target needs.

    Declared ones (`devops-agent.depends-on`, Compose's `com.docker.compose.depends_on`) are
    always checked. A name mined from an error line is application output, as untrusted as alert
    text ("failed to connect to a database" names `a`): it counts only when it is exactly an
    existing container or service, and that one is itself failing.
    """
    declared = [n for n in target.depends_on if n != target.name]
    mined = [n for n in names_in(log_errors) if n != target.name and n not in declared]
    project = target.project if target.kind == "compose_service" else None
    evidence: list[dict[str, Any]] = []
    for name in [*declared, *mined][:MAX_DEPENDENCIES]:
        dep = await ctx.registry.backend.resolve([name], project)
        if not isinstance(dep, Target):
            continue
        params: dict[str, Any] = {"target": dep.name}
        if dep.kind == "compose_service" and dep.project:
            params["project"] = dep.project
        result = await ctx.registry.run("health_check", params)
        healthy = bool(result.ok and result.data.get("healthy"))
        if name not in declared and healthy:
            continue  # a healthy service that a log line happens to name is no evidence
        how = "declared by label" if name in declared else "named in the error lines, and failing"
        handler = await ctx.store.handler_of(dep.key, run_id, recently(ctx))
        evidence.append(
            Evidence(
                source="dependency",
                target=dep.name,
                ok=result.ok,
                summary=f"dependency {dep.name} ({how}): {'healthy' if healthy else 'DOWN'} ({result.message})",
                data={
                    "healthy": healthy,
                    "declared": name in declared,
                    "project": params.get("project"),
                    "key": dep.key,
                    "handled_by": handler,
                    "health": result.data,
                },
            ).model_dump(mode="json")
        )
    return evidence


async def _prometheus(url: str | None, service: str) -> list[dict[str, Any]]:
    """PROMETHEUS_URL's view of the target (ok=False when it cannot answer), or nothing."""
    if not url:
        return []
    return [(await service_evidence(url, service)).model_dump(mode="json")]


async def _settle_probe(
    ctx: AgentContext,
    target: Target,
    health: OperationResult,
    logs: OperationResult,
    resources: OperationResult,
    metrics: list[dict[str, Any]],
    quick: float,
) -> OperationResult:
    """The quick probe got no answer: confirm the hang from the other evidence, or probe again
    with the full PROBE_TIMEOUT. Either way the probe's data says which it was."""
    seen, why_wait = confirmed_hang(health, logs, resources, metrics, quick)
    if seen:
        probe = health.data["probe"]
        probe["confirmed_by"] = seen
        probe["summary"] = f"{probe['summary']}, and {seen}"
        health.message = f"{health.message}; {seen}"
        return health
    again = await ctx.registry.run("health_check", target.params)  # PROBE_TIMEOUT
    if again.ok and again.data.get("probe"):
        again.data["probe"]["quick_probe"] = f"no answer in {quick:g}s; waited longer: {why_wait}"
    return again


async def root_cause(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    target = run.target
    assert target is not None, "triage routes only resolved targets here"
    again = await ctx.registry.backend.resolve(
        [target.name], target.project if target.kind == "compose_service" else None
    )
    target = again if isinstance(again, Target) else target  # replicas may have changed
    quick = min(ctx.settings.probe_quick_timeout, ctx.settings.probe_timeout)
    gathered_at = utcnow()
    (health, logs, resources), metrics = await asyncio.gather(
        asyncio.gather(
            ctx.registry.run("health_check", {**target.params, "probe_timeout": quick}),
            ctx.registry.run("get_logs", {**target.params, "lines": 200}),
            ctx.registry.run("check_resources", target.params),
        ),
        _prometheus(ctx.settings.prometheus_url, target.name),
    )
    if quick < ctx.settings.probe_timeout and probe_timed_out(health):
        health = await _settle_probe(ctx, target, health, logs, resources, metrics, quick)
    evidence = [_evidence(r) for r in (health, logs, resources)]
    errors = logs.data.get("error_lines", []) if logs.ok else []
    evidence += await _dependencies(ctx, run.run_id, target, errors)
    evidence += metrics
    stored = target_dump(target)
    gathered = RunState({**state, "evidence": evidence, "target": stored})
    case = investigation(gathered, ctx.settings, history=await ctx.store.history(target.name))
    diagnosis = await ctx.reasoner.diagnose(case)
    await ctx.audit.append(
        run.run_id, "diagnosis", diagnosis.reasoner, diagnosis.model_dump(mode="json")
    )
    first = state.get("first_category") or diagnosis.category
    return {
        "first_category": first,
        "target": stored,
        "diagnosed_at": gathered_at,
        "evidence": evidence,
        "diagnosis": diagnosis.model_dump(mode="json"),
        "reasoning": case.calls,
    }
