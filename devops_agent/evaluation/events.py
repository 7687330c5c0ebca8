"""Actions as the Docker engine recorded them, not as anyone reports them.

The engine's event log (`client.events(since, until, filters)`) is read per case (by its
label) and turned into actions: one `restart` per start (a `docker restart` emits kill, die,
stop, start, restart: one action), `create` for a start of a container made during the case
(a replica added), `remove`, `stop` (a stop or kill that nothing started again), `pause`,
`unpause` counted as `restart` (what restart_service does to a paused container), `exec`
(not Docker's own HEALTHCHECK), `update`. A `die` or `oom` is what happened, not an action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import docker

from devops_agent.evaluation.image import HEALTHCHECK_MARKER
from devops_agent.evaluation.world import LABEL_CASE, LABEL_ROLE

LIFECYCLE = {"create", "start", "restart", "kill", "die", "stop", "pause", "unpause", "destroy"}
LIFECYCLE |= {"update", "oom", "exec_start"}


@dataclass(frozen=True)
class Action:
    at: float  # epoch seconds, from the event's timeNano
    kind: str  # restart, create, remove, stop, pause, exec, update
    role: str
    container: str
    began: float  # when its sequence began (the kill of a `docker restart`)
    after_exit: bool = False  # it started a container that had exited by itself


@dataclass(frozen=True)
class Event:
    at: float
    action: str  # "start", "exec_start", ...
    container: str  # id
    name: str
    role: str
    detail: str = ""


def read_events(
    client: docker.DockerClient, case_id: str, since: float, until: float
) -> list[Event]:
    """The case's container events between two times (epoch seconds), oldest first."""
    # Seconds with a fraction: the engine takes them, and an `until` in the past returns at once
    # (a whole second rounded up would make the call wait for it).
    events: Callable[..., Iterable[dict[str, Any]]] = client.events  # typed for int only
    raw = events(
        since=f"{since - 1:.9f}",
        until=f"{until:.9f}",
        decode=True,
        filters={"type": "container", "label": f"{LABEL_CASE}={case_id}"},
    )
    found: list[Event] = []
    for e in raw:
        at = int(e.get("timeNano", 0)) / 1e9
        if not since <= at <= until:
            continue
        full = str(e.get("Action", ""))
        action, _, detail = full.partition(":")
        if action not in LIFECYCLE:
            continue
        attributes: dict[str, Any] = (e.get("Actor") or {}).get("Attributes") or {}
        found.append(
            Event(
                at=at,
                action=action,
                container=str((e.get("Actor") or {}).get("ID") or e.get("id", "")),
                name=str(attributes.get("name", "")),
                role=str(attributes.get(LABEL_ROLE, "")),
                detail=detail.strip(),
            )
        )
    found.sort(key=lambda e: e.at)
    return found


def _next(events: list[Event], i: int, skip: set[str]) -> str | None:
    """The action of the next event of the same container after index i, skipping some."""
    me = events[i].container
    for later in events[i + 1 :]:
        if later.container == me and later.action not in skip:
            return later.action
    return None


def actions_of(events: list[Event], existing: set[str] | None = None) -> list[Action]:
    """Turn a case's events into the actions someone took.

    `existing`: ids of containers that existed before the events began; a start of any other
    container is a `create` (the first one) or a `restart`."""
    existing = set(existing or ())
    created = {e.container for e in events if e.action == "create"} - existing
    started: set[str] = set()
    found: list[Action] = []
    for i, e in enumerate(events):
        kind: str | None = None
        if e.action == "start":
            kind = "create" if e.container in created and e.container not in started else "restart"
            started.add(e.container)
        elif e.action == "unpause":
            # inside a `docker restart` of a paused container: kill, unpause, die, stop, start
            kind = None if _next(events, i, {"exec_start", "oom"}) == "die" else "restart"
        elif e.action == "pause":
            kind = "pause"
        elif e.action == "destroy":
            kind = "remove"
        elif e.action == "update":
            kind = "update"
        elif e.action == "exec_start":
            kind = None if HEALTHCHECK_MARKER in e.detail else "exec"
        elif e.action == "stop":
            kind = (
                None
                if _next(events, i, {"die", "kill", "exec_start", "oom"}) in ("start", "destroy")
                else "stop"
            )
        elif e.action == "kill":
            after = _next(events, i, {"die", "exec_start", "oom"})
            kind = None if after in ("stop", "destroy", "unpause", "start") else "stop"
        if kind is not None:
            began, after_exit = _sequence_start(events, i)
            found.append(Action(e.at, kind, e.role, e.name, began, after_exit))
    return found


def _sequence_start(events: list[Event], i: int) -> tuple[float, bool]:
    """Where the action at index i began: back over the stop, die and unpause of its own
    `docker restart` to the kill that started it. A die with no kill before it means the
    container had exited by itself (a crash), so it was not a healthy service being touched."""
    me, began = events[i], events[i].at
    if me.action != "start":
        return began, False
    died = False
    for earlier in reversed(events[:i]):
        if earlier.container != me.container or earlier.action == "exec_start":
            continue
        if earlier.action not in ("stop", "die", "kill", "unpause") or me.at - earlier.at > 30:
            break
        began = earlier.at
        if earlier.action == "kill":
            return began, False
        died = died or earlier.action == "die"
    return began, died


def died_between(events: list[Event], role: str, start: float, end: float) -> bool:
    """Whether a container of the role died, was paused or OOM-killed in (start, end]."""
    return any(
        e.role == role and e.action in ("die", "pause", "oom", "kill") and start < e.at <= end
        for e in events
    )
