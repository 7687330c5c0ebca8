"""root_cause: gather evidence with the read-only operations, then ask the reasoner.

The target's health probe is quick first (PROBE_QUICK_TIMEOUT); when it gets no answer, nodes/hang.py
decides whether the other evidence confirms a hang or the probe must wait PROBE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from devops_agent.context import AgentContext
from devops_agent.nodes.common import investigation, target_dump, target_of
from devops_agent.nodes.hang import confirmed_hang, probe_timed_out
from devops_agent.state import Evidence, IncidentState
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


async def _dependencies(
    ctx: AgentContext, target_name: str, declared: list[str], log_errors: list[str]
) -> list[dict[str, Any]]:
    names = [n for n in dict.fromkeys([*declared, *names_in(log_errors)]) if n != target_name]
    evidence: list[dict[str, Any]] = []
    for name in names[:MAX_DEPENDENCIES]:
        dep = await ctx.registry.backend.resolve([name])
        if dep is None:
            continue
        result = await ctx.registry.run("health_check", {"target": dep.name})
        healthy = bool(result.ok and result.data.get("healthy"))
        how = "declared by label" if name in declared else "named in the error lines"
        evidence.append(
            Evidence(
                source="dependency",
                target=dep.name,
                ok=result.ok,
                summary=f"dependency {dep.name} ({how}): {'healthy' if healthy else 'DOWN'} ({result.message})",
                data={"healthy": healthy, "declared": name in declared, "health": result.data},
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
    name: str,
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
    again = await ctx.registry.run("health_check", {"target": name})  # PROBE_TIMEOUT
    if again.ok and again.data.get("probe"):
        again.data["probe"]["quick_probe"] = f"no answer in {quick:g}s; waited longer: {why_wait}"
    return again


async def root_cause(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    target = target_of(state)
    assert target is not None, "triage routes only resolved targets here"
    target = (
        await ctx.registry.backend.resolve([target.name]) or target
    )  # replicas may have changed
    quick = min(ctx.settings.probe_quick_timeout, ctx.settings.probe_timeout)
    (health, logs, resources), metrics = await asyncio.gather(
        asyncio.gather(
            ctx.registry.run("health_check", {"target": target.name, "probe_timeout": quick}),
            ctx.registry.run("get_logs", {"target": target.name, "lines": 200}),
            ctx.registry.run("check_resources", {"target": target.name}),
        ),
        _prometheus(ctx.settings.prometheus_url, target.name),
    )
    if quick < ctx.settings.probe_timeout and probe_timed_out(health):
        health = await _settle_probe(ctx, target.name, health, logs, resources, metrics, quick)
    evidence = [_evidence(r) for r in (health, logs, resources)]
    errors = logs.data.get("error_lines", []) if logs.ok else []
    evidence += await _dependencies(ctx, target.name, target.depends_on, errors)
    evidence += metrics
    stored = target_dump(target)
    case = investigation(
        {**state, "evidence": evidence, "target": stored}, ctx.settings.max_replicas
    )
    diagnosis = await ctx.reasoner.diagnose(case)
    await ctx.audit.append(
        str(state.get("run_id")), "diagnosis", diagnosis.reasoner, diagnosis.model_dump(mode="json")
    )
    return {
        "target": stored,
        "evidence": evidence,
        "diagnosis": diagnosis.model_dump(mode="json"),
        "reasoning": case.calls,
    }
