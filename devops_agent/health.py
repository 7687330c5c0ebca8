"""What "healthy" means, in one place, and the HTTP probe that part of it rests on.

A service is healthy when every one of its containers is running (not paused, not restarting),
Docker's HEALTHCHECK does not say `unhealthy` (nor `starting`: not yet healthy), and its health
URL (label `devops-agent.health-url`), where one is declared, answers 2xx within PROBE_TIMEOUT.
A container with neither a HEALTHCHECK nor a URL is healthy while it runs. The backends,
root_cause, validate, the rules and the monitoring loop all decide it here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from devops_agent.operations import DEFAULT_PROBE_TIMEOUT

NOT_YET_HEALTHY = ("unhealthy", "starting")


def container_healthy(facts: Mapping[str, Any]) -> bool:
    """One container's own state (the `container_facts` of a backend)."""
    return (
        bool(facts.get("running"))
        and not facts.get("paused")
        and not facts.get("restarting")
        and facts.get("health", "none") not in NOT_YET_HEALTHY
    )


def service_healthy(
    containers: Iterable[Mapping[str, Any]], probe: Mapping[str, Any] | None
) -> bool:
    """Every container healthy, and the probe (when the service declares one) answered 2xx."""
    found = list(containers)
    return (
        bool(found)
        and all(container_healthy(c) for c in found)
        and (probe is None or bool(probe.get("ok")))
    )


async def http_probe(
    url: str, timeout: float = DEFAULT_PROBE_TIMEOUT, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """GET the health URL: 2xx is healthy. Records the status, the latency and a short body."""
    started = time.perf_counter()
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=timeout, trust_env=False) as own:
                response = await own.get(url)
        else:
            response = await client.get(url, timeout=timeout)
        latency = (time.perf_counter() - started) * 1000
        return {
            "url": url,
            "status": response.status_code,
            "ok": 200 <= response.status_code < 300,
            "latency_ms": round(latency, 1),
            "error": None,
            "body": response.text[:200],
            "summary": f"HTTP {response.status_code} in {latency:.0f} ms",
        }
    except httpx.TimeoutException:
        return probe_failure(url, "timeout", f"no answer in {timeout:g}s", started)
    except httpx.HTTPError as exc:
        return probe_failure(url, "connection", type(exc).__name__, started)


def probe_failure(url: str, error: str, summary: str, started: float) -> dict[str, Any]:
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
