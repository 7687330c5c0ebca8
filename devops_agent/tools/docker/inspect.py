"""What `docker inspect` tells about a container: its state, as the health model reads it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from docker.models.containers import Container


def _parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")[:26] + "+00:00")
    except ValueError:
        return None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    a, b = _parse_time(start), _parse_time(end)
    return round((b - a).total_seconds(), 3) if a and b else None


def container_facts(container: Container) -> dict[str, Any]:
    """The parts of `docker inspect` that tell what happened to a container."""
    attrs = container.attrs
    state = attrs.get("State", {})
    health = (state.get("Health") or {}).get("Status", "none")
    return {
        "name": container.name,
        "id": container.id[:12] if container.id else "",
        "status": state.get("Status", "unknown"),
        "running": bool(state.get("Running")) and not state.get("Paused"),
        "paused": bool(state.get("Paused")),
        "restarting": bool(state.get("Restarting")),
        "oom_killed": bool(state.get("OOMKilled")),
        "exit_code": state.get("ExitCode"),
        "error": state.get("Error", ""),
        "health": health,
        "restart_count": attrs.get("RestartCount", 0),
        "started_at": state.get("StartedAt"),
        "finished_at": state.get("FinishedAt"),
        "ran_for_s": _seconds_between(state.get("StartedAt"), state.get("FinishedAt")),
        "memory_limit": (attrs.get("HostConfig") or {}).get("Memory", 0),
        "labels": attrs.get("Config", {}).get("Labels") or {},
    }
