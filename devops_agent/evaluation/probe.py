"""The evaluation's own look at a container: its state, its HTTP answer, its CPU throttling.

Used to see a fault become visible, to check recovery, and to tell whether a service was
healthy when someone acted on it. Never through a proxy; never through the agent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import httpx

from devops_agent.evaluation.scenario import Condition
from devops_agent.tools import cgroups

HTTP_TIMEOUT = 3.0


def http_get(url: str, timeout: float = HTTP_TIMEOUT) -> tuple[int | None, float]:
    """GET `url`: (status, milliseconds), or (None, ms) when nothing answered in time."""
    started = time.perf_counter()
    try:
        response = httpx.get(url, timeout=timeout, trust_env=False)
        status: int | None = response.status_code
    except httpx.HTTPError:
        status = None
    return status, (time.perf_counter() - started) * 1000


@dataclass
class Observation:
    """One look at one container."""

    at: float
    exists: bool = False
    status: str = "missing"  # running, exited, paused, restarting, created, missing
    health: str | None = None  # Docker's HEALTHCHECK status
    restarts: int = 0
    http: int | None = None
    http_ms: float | None = None
    throttled: float | None = None
    logs: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Running, not paused, and its health URL answers 200."""
        return self.status == "running" and self.http == 200


def observe(
    client: docker.DockerClient,
    container: str,
    url: str,
    *,
    http: bool = True,
    throttle: bool = False,
    logs: bool = False,
    http_timeout: float = HTTP_TIMEOUT,
) -> Observation:
    seen = Observation(at=time.time())
    try:
        attrs = client.api.inspect_container(container)
    except docker.errors.NotFound:
        return seen
    state = attrs["State"]
    seen.exists = True
    seen.status = "paused" if state.get("Paused") else str(state.get("Status"))
    seen.health = (state.get("Health") or {}).get("Status")
    seen.restarts = int(attrs.get("RestartCount", 0))
    if http and seen.status == "running":
        seen.http, seen.http_ms = http_get(url, http_timeout)
    if throttle and seen.status == "running":
        seen.throttled = throttled_ratio(attrs)
    if logs:
        with contextlib.suppress(docker.errors.NotFound):
            seen.logs = client.api.logs(container).decode(errors="replace")
    return seen


def throttled_ratio(attrs: dict[str, Any]) -> float | None:
    """The share of CFS periods in which the container was throttled, over half a second."""
    parent = (attrs.get("HostConfig") or {}).get("CgroupParent") or ""
    reader = cgroups.locate(str(attrs["Id"]), parent)
    if reader is None:
        return None
    usage = cgroups.measure([reader])
    if not usage or usage[0].periods <= 0:
        return 0.0 if usage else None
    return usage[0].throttled / usage[0].periods


def needs(conditions: list[Condition]) -> dict[str, bool]:
    """What a look must gather to judge these conditions."""
    return {
        "http": any(c.http is not None for c in conditions),
        "throttle": any(c.throttled_below is not None for c in conditions),
        "logs": any(c.log is not None for c in conditions),
    }


def satisfied(condition: Condition, seen: Observation, fill: Callable[[str], str]) -> bool:
    """Whether one observation shows the condition."""
    if condition.state is not None and seen.status != condition.state:
        return False
    if condition.docker_health is not None and seen.health != condition.docker_health:
        return False
    if condition.restarts is not None and seen.restarts < condition.restarts:
        return False
    if condition.log is not None and fill(condition.log) not in seen.logs:
        return False
    if condition.http is not None:
        if condition.http == "none":
            if seen.status == "running" and seen.http is not None:
                return False
        elif seen.http != condition.http:
            return False
        if condition.within_ms is not None and (seen.http_ms or 0) > condition.within_ms:
            return False
    throttling = condition.throttled_below
    return throttling is None or (seen.throttled is not None and seen.throttled < throttling)
