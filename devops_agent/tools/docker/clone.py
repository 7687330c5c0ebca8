"""Scaling a Compose service the way Compose does: replicas with the whole configuration.

A clone gets the template's full `Config` and `HostConfig` as the engine reported them (user,
capabilities, security options, read-only root, mounts, healthcheck, restart policy, limits,
labels) and its network aliases; only the replica number and the name differ.
"""

from __future__ import annotations

import copy
from typing import Any

import docker
from docker.errors import APIError
from docker.models.containers import Container

from devops_agent.labels import COMPOSE_NUMBER, COMPOSE_PROJECT, COMPOSE_SERVICE

SINGLE_NETWORK_MODES = ("host", "none", "bridge", "default")


def _networking(client: docker.DockerClient, template: Container) -> dict[str, Any] | None:
    """The template's user-defined networks with their aliases (the service name among them)."""
    mode = template.attrs["HostConfig"].get("NetworkMode") or "default"
    if mode in SINGLE_NETWORK_MODES or mode.startswith("container:"):
        return None
    networks = template.attrs.get("NetworkSettings", {}).get("Networks") or {}
    short_id = (template.id or "")[:12]
    endpoints = {
        name: client.api.create_endpoint_config(
            aliases=[a for a in (net.get("Aliases") or []) if a != short_id] or None
        )
        for name, net in networks.items()
    }
    return client.api.create_networking_config(endpoints) if endpoints else None  # type: ignore[arg-type]


def clone(client: docker.DockerClient, template: Container, number: int) -> Container:
    """Create and start replica `number` of the template's Compose service."""
    config = template.attrs["Config"]
    labels = {**(config.get("Labels") or {}), COMPOSE_NUMBER: str(number)}
    name = f"{labels.get(COMPOSE_PROJECT, 'default')}-{labels[COMPOSE_SERVICE]}-{number}"
    host_config = copy.deepcopy(template.attrs["HostConfig"])
    kwargs = {
        "image": config["Image"],
        "command": config.get("Cmd"),
        "entrypoint": config.get("Entrypoint"),
        "environment": config.get("Env"),
        "user": config.get("User") or None,
        "working_dir": config.get("WorkingDir") or None,
        "labels": labels,
        "stop_signal": config.get("StopSignal"),
        "stop_timeout": config.get("StopTimeout"),
        "healthcheck": config.get("Healthcheck"),
        "volumes": list(config.get("Volumes") or {}) or None,
        "ports": list(config.get("ExposedPorts") or {}) or None,
        "tty": bool(config.get("Tty")),
        "stdin_open": bool(config.get("OpenStdin")),
        "host_config": host_config,
        "networking_config": _networking(client, template),
        "use_config_proxy": False,
    }
    try:
        created = client.api.create_container(name=name, **kwargs)
    except APIError as exc:
        if exc.status_code != 409:  # the name is taken: another name, same replica number
            raise
        created = client.api.create_container(name=f"{name}-{(template.id or '')[:6]}", **kwargs)
    client.api.start(created["Id"])
    return client.containers.get(created["Id"])
