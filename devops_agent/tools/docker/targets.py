"""Which containers a name means: an exact container name, or a Compose service's replicas.

Never a container ID or an ID prefix (what `containers.get` also accepts): an alert label that
happens to be the first hex characters of an unrelated container's ID must not reach it. A
Compose service name in several projects is ambiguous unless a project is given.
"""

from __future__ import annotations

import docker
from docker.models.containers import Container

from devops_agent.labels import COMPOSE_NUMBER, COMPOSE_PROJECT, COMPOSE_SERVICE
from devops_agent.state import Ambiguity, Target


class TargetMissing(Exception):
    """The name has no container."""


class TargetAmbiguous(Exception):
    """The name means several targets."""

    def __init__(self, ambiguity: Ambiguity):
        super().__init__(ambiguity.message)
        self.ambiguity = ambiguity


def key_of(container: Container) -> str:
    """A container's identity as a target: its Compose service, else its name."""
    labels = container.labels or {}
    if COMPOSE_SERVICE in labels:
        return f"compose:{labels.get(COMPOSE_PROJECT, '')}/{labels[COMPOSE_SERVICE]}"
    return f"container:{container.name}"


def _by_name(client: docker.DockerClient, name: str) -> Container | None:
    # The engine's name filter matches parts of names; only an exact name counts.
    for container in client.containers.list(all=True, filters={"name": name}):
        if container.name == name:
            return container
    return None


def _replicas(client: docker.DockerClient, service: str) -> dict[str, list[Container]]:
    """The containers of a Compose service name, by project."""
    found = client.containers.list(all=True, filters={"label": f"{COMPOSE_SERVICE}={service}"})
    projects: dict[str, list[Container]] = {}
    for container in found:
        projects.setdefault(container.labels.get(COMPOSE_PROJECT, ""), []).append(container)
    return projects


def number(container: Container) -> int:
    return int(container.labels.get(COMPOSE_NUMBER, "0") or 0)


def lookup(
    client: docker.DockerClient, name: str, project: str | None = None
) -> list[Container] | Ambiguity | None:
    """The containers `name` means (in `project`, when given), sorted by replica number."""
    container = _by_name(client, name)
    if container is not None and (
        not project or (container.labels or {}).get(COMPOSE_PROJECT) == project
    ):
        return [container]
    projects = _replicas(client, name)
    if project:
        projects = {p: c for p, c in projects.items() if p == project}
    if not projects:
        return None
    if len(projects) > 1:
        return Ambiguity(
            name=name, matches=sorted(f"{p or '(no project)'}/{name}" for p in projects)
        )
    (replicas,) = projects.values()
    return sorted(replicas, key=number)


def containers_of(
    client: docker.DockerClient, name: str, project: str | None = None
) -> list[Container]:
    """The containers of a target, for an operation; raises TargetMissing or TargetAmbiguous."""
    found = lookup(client, name, project)
    if found is None:
        raise TargetMissing(name)
    if isinstance(found, Ambiguity):
        raise TargetAmbiguous(found)
    return found


def target_of(name: str, containers: list[Container]) -> Target:
    """The Target for the containers a name resolved to."""
    first = containers[0]
    if len(containers) == 1 and first.name == name:
        return Target(
            name=name,
            kind="container",
            containers=[name],
            labels=dict(first.labels or {}),
            project=(first.labels or {}).get(COMPOSE_PROJECT),
            key=key_of(first),
        )
    labels: dict[str, str] = {}
    for container in containers:
        labels = {**(container.labels or {}), **labels}
    return Target(
        name=name,
        kind="compose_service",
        containers=sorted(c.name or "" for c in containers),
        labels=labels,
        project=labels.get(COMPOSE_PROJECT),
        key=key_of(first),
    )
