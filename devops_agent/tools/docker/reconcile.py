"""Did a step that was interrupted happen? Asked of the engine, not of our own records.

Before a mutating step the ledger keeps a snapshot of what the step would change (each
container's StartedAt, FinishedAt and paused state, the replicas). After a crash between the
ledger's begin and its end, the containers' state says what happened: a restart or start sets
StartedAt, an unpause clears Paused, a scale changes the set of replicas. A container that was
stopped but not started yet, or one the engine's event log shows a stop or kill of since the
step began (a restart in progress: the engine finishes it even when our process died), is
waited for. What the state cannot tell (a container gone, half of the replicas restarted, a
command run with `exec`, whose effect leaves no trace) is `unknown`: the run escalates instead
of guessing.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import docker
from docker.errors import NotFound
from docker.models.containers import Container

from devops_agent.tools.docker.targets import containers_of
from devops_agent.tools.registry import Reconciliation

WAIT_FOR_START = 15.0  # seconds a stopped-but-not-started container is given to come back
POLL = 0.5


def _state(container: Container) -> dict[str, Any]:
    state = container.attrs.get("State", {})
    return {
        "id": container.id,
        "name": container.name,
        "started_at": state.get("StartedAt"),
        "finished_at": state.get("FinishedAt"),
        "paused": bool(state.get("Paused")),
        "status": state.get("Status"),
    }


def snapshot(
    client: docker.DockerClient, operation: str, target: str, project: str | None
) -> dict[str, Any] | None:
    """What reconcile (and the scale's inverse) needs, taken before the step."""
    if operation not in ("restart_service", "scale_service", "execute_command"):
        return None
    containers = containers_of(client, target, project)
    return {"containers": [_state(c) for c in containers], "replicas": len(containers)}


MOVES = ("kill", "stop", "die", "restart", "start", "unpause")  # events of a restart in progress


def _moved(client: docker.DockerClient, ids: list[str], since: datetime | None) -> bool:
    """Whether the engine's event log shows any of MOVES on these containers since `since`."""
    if since is None:
        return False
    found = client.events(
        since=int(since.timestamp()) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": list(MOVES)},
    )
    floor = since.timestamp() * 1e9
    wanted = set(ids)
    return any(e.get("id") in wanted and int(e.get("timeNano", 0)) >= floor for e in found)


def _restart(
    client: docker.DockerClient, before: list[dict[str, Any]], since: datetime | None, wait: float
) -> Reconciliation:
    deadline = time.monotonic() + wait
    moved = _moved(client, [c["id"] for c in before], since)
    while True:
        now: list[dict[str, Any]] = []
        for old in before:
            try:
                now.append(_state(client.containers.get(old["id"])))
            except NotFound:
                return Reconciliation("unknown", f"{old['name']} is gone")
        started = [
            n["name"]
            for o, n in zip(before, now, strict=True)
            if n["started_at"] != o["started_at"] or (o["paused"] and not n["paused"])
        ]
        stopping = [
            n["name"]
            for o, n in zip(before, now, strict=True)
            if n["finished_at"] != o["finished_at"] and n["name"] not in started
        ]
        if len(started) == len(before):
            return Reconciliation("done", f"started again since: {', '.join(started)}")
        if not started and not stopping and not moved:
            return Reconciliation("not_done", "no container was stopped, started or unpaused")
        if time.monotonic() >= deadline:
            return Reconciliation(
                "unknown",
                f"started again: {', '.join(started) or 'none'}; stopped or being stopped, not "
                f"started: {', '.join(stopping) or ('in progress' if moved else 'none')}",
            )
        time.sleep(POLL)


def reconcile(
    client: docker.DockerClient,
    operation: str,
    params: Any,
    before: dict[str, Any] | None,
    since: str | None,
    wait: float = WAIT_FOR_START,
) -> Reconciliation:
    """Whether the interrupted step `operation(params)`, begun at `since` (ISO time), happened,
    judged from `before` and the engine's events since."""
    if operation == "execute_command":
        return Reconciliation("unknown", "a command's effect cannot be read back; never run twice")
    if not before:
        return Reconciliation("unknown", "no snapshot was taken before the step")
    if operation == "restart_service":
        began = datetime.fromisoformat(since) if since else None
        return _restart(client, before["containers"], began, wait + getattr(params, "timeout", 0))
    if operation == "scale_service":
        try:
            now = containers_of(client, params.target, params.project)
        except Exception as exc:  # missing or ambiguous now: nothing to compare
            return Reconciliation("unknown", f"{params.target}: {exc}")
        ids = {c.id for c in now}
        if len(now) == params.replicas:
            return Reconciliation("done", f"{params.target} has {len(now)} replicas")
        if ids == {c["id"] for c in before["containers"]}:
            return Reconciliation(
                "not_done", f"{params.target} still has the same {len(now)} replicas"
            )
        return Reconciliation(
            "unknown", f"{params.target} has {len(now)} replicas, neither before nor after"
        )
    return Reconciliation("unknown", f"{operation} cannot be reconciled")
