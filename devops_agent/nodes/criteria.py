"""A workflow phase's success criteria beyond "healthy": a Prometheus query under a threshold,
a log pattern absent. What is not met, in words (empty: all met)."""

from __future__ import annotations

import re
from typing import Any

from devops_agent.context import AgentContext
from devops_agent.state import Target
from devops_agent.tools.prometheus import PrometheusClient, quote


async def unmet(ctx: AgentContext, target: Target | None, success: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if target is None:
        return found
    check = success.get("prometheus")
    if check:
        if not ctx.settings.prometheus_url:
            found.append("the phase's Prometheus criterion needs PROMETHEUS_URL")
        else:
            query = str(check["query"]).replace("$target", quote(target.name))
            value = (await PrometheusClient(ctx.settings.prometheus_url).query(query)).first()
            if value is None or value >= float(check["below"]):
                found.append(f"{query} is {value}, not under {check['below']}")
    pattern = success.get("log_absent")
    if pattern:
        logs = await ctx.registry.run("get_logs", {**target.params, "lines": 50})
        lines = [str(line) for line in logs.data.get("tail") or []] if logs.ok else []
        hits = [line for line in lines if re.search(pattern, line)]
        if hits or not logs.ok:
            found.append(
                f"the logs still show {pattern!r}: {hits[-1][:200] if hits else logs.message}"
            )
    return found
