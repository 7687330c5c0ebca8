"""CPU and memory of containers against their limits: from the cgroup files when the engine is
local (tools/cgroups.py, half a second), else from one sample of Docker's stats API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from docker.models.containers import Container

from devops_agent.tools import cgroups


def cgroup_figures(running: list[Container], root: Path | None) -> list[dict[str, Any]] | None:
    """Figures from the cgroup files, when every running container's are readable here."""
    if not running:
        return []
    if root is None:
        return None
    readers = [
        cgroups.locate(str(c.id), c.attrs["HostConfig"].get("CgroupParent") or "", root)
        for c in running
    ]
    found = [r for r in readers if r is not None]
    usages = cgroups.measure(found) if len(found) == len(readers) else None
    if usages is None:
        return None
    return [
        _figures(
            c,
            source="cgroup",
            cpu_percent=u.cpu_percent,
            online=os.cpu_count() or 1,
            periods=u.periods,
            throttled=u.throttled,
            throttled_total=u.throttled_total,
            memory=u.memory,
        )
        for c, u in zip(running, usages, strict=True)
    ]


def stats_figures(container: Container) -> dict[str, Any]:
    """Figures from one sample of Docker's stats API (which carries the previous one too)."""
    stats: dict[str, Any] = container.stats(stream=False)  # type: ignore[assignment]
    cpu, pre = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
        "total_usage", 0
    )
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
    throttle, pre_throttle = cpu.get("throttling_data", {}), pre.get("throttling_data", {})
    mem = stats.get("memory_stats", {})
    return _figures(
        container,
        source="stats API",
        cpu_percent=(cpu_delta / system_delta) * online * 100 if system_delta > 0 else 0.0,
        online=online,
        periods=throttle.get("periods", 0) - pre_throttle.get("periods", 0),
        throttled=throttle.get("throttled_periods", 0) - pre_throttle.get("throttled_periods", 0),
        throttled_total=throttle.get("throttled_periods", 0),
        memory=mem.get("usage", 0) - _page_cache(mem.get("stats") or {}),
    )


def _page_cache(stats: dict[str, Any]) -> int:
    """The reclaimable page cache that `docker stats` leaves out of a container's memory:
    `total_inactive_file` on cgroup v1, `inactive_file` on v2 (tools/cgroups.py does the same)."""
    return int(stats.get("total_inactive_file", stats.get("inactive_file", 0)))


def _figures(
    container: Container,
    *,
    source: str,
    cpu_percent: float,
    online: int,
    periods: int,
    throttled: int,
    throttled_total: int,
    memory: int,
) -> dict[str, Any]:
    """CPU against the quota, memory against the limit, and throttling."""
    host = container.attrs.get("HostConfig", {})
    limit_cpus = (host.get("NanoCpus") or 0) / 1e9
    if not limit_cpus and host.get("CpuQuota") and host.get("CpuPeriod"):
        limit_cpus = host["CpuQuota"] / host["CpuPeriod"]
    limit = limit_cpus or float(online)
    mem_limit = host.get("Memory") or 0
    return {
        "cpu_percent": round(cpu_percent, 1),
        "cpu_limit_cpus": limit_cpus or None,
        "cpu_of_limit_percent": round(cpu_percent / limit, 1) if limit else 0.0,
        "throttled_ratio": round(throttled / periods, 3) if periods > 0 else 0.0,
        "throttled_periods_total": throttled_total,
        "memory_usage": memory,
        "memory_limit": mem_limit or None,
        "memory_percent": round(memory / mem_limit * 100, 1) if mem_limit else 0.0,
        "source": source,
    }
