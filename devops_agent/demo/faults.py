"""The demo's service, and the four ways the demo breaks it.

Every container runs on the host network (busybox httpd on a free 127.0.0.1 port) and carries
the label `devops-agent.demo=1`, which is how `--cleanup` finds what the demo made, and
`devops-agent.health-url`, which is how the agent probes it. Names are fresh on each run
(`demo-api-3fa9c1`), so the demo works twice in a row without tripping the agent's
per-service limits.
"""

from __future__ import annotations

import http.client
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.errors

from devops_agent.config import Settings
from devops_agent.demo.image import HEALTH_PATH, IMAGE, LABEL_DEMO, DemoError

T = TypeVar("T")
LABEL_RUN = "devops-agent.demo-run"  # which demo run made the container
LABEL_HEALTH_URL = "devops-agent.health-url"
LABEL_DEPENDS_ON = "devops-agent.depends-on"
OOM_LIMIT = "16m"

# fault -> (the service's name prefix, what the demo does to it)
FAULTS: dict[str, tuple[str, str]] = {
    "crash": ("demo-api", "the process panics and exits with code 2"),
    "hang": ("demo-worker", "the process keeps running, but its health endpoint stops answering"),
    "dependency": ("demo-orders", "the database it declares (devops-agent.depends-on) is stopped"),
    "oom": ("demo-cache", f"it allocates past its {OOM_LIMIT} memory limit and is OOM-killed"),
}


@dataclass(frozen=True)
class DemoService:
    """What the demo started: the service the alert names, and its database when it has one."""

    name: str
    health_url: str
    run: str
    dependency: str | None = None


def docker_client(settings: Settings) -> docker.DockerClient:
    """The engine of DOCKER_HOST (or the local socket), answering; DemoError when it does not."""
    try:
        client = (
            docker.DockerClient(base_url=settings.docker_host, timeout=60)
            if settings.docker_host
            else docker.from_env(timeout=60)
        )
        client.ping()
    except docker.errors.DockerException as exc:
        raise DemoError(
            f"no Docker engine answers ({exc.__class__.__name__}): start it (scripts/setup.sh "
            "does) or set DOCKER_HOST"
        ) from None
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def probe(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET `url`, or None when nothing answers within `timeout`."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return None


def wait_for(check: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Poll `check` until it returns something true; DemoError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def _state(client: docker.DockerClient, name: str) -> dict[str, Any]:
    state: dict[str, Any] = client.api.inspect_container(name)["State"]
    return state


def _start(
    client: docker.DockerClient,
    name: str,
    run: str,
    env: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    **kwargs: Any,
) -> DemoService:
    port = free_port()
    health_url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
    client.containers.run(
        IMAGE,
        name=name,
        detach=True,
        network_mode="host",
        environment={"PORT": str(port), **(env or {})},
        labels={LABEL_DEMO: "1", LABEL_RUN: run, LABEL_HEALTH_URL: health_url, **(labels or {})},
        tmpfs={"/run": ""},
        stop_signal="SIGTERM",
        **kwargs,
    )
    wait_for(lambda: probe(health_url) == 200, f"{name} to answer {health_url}", timeout=20)
    return DemoService(name=name, health_url=health_url, run=run)


def start(client: docker.DockerClient, fault: str) -> DemoService:
    """Start the demo service for `fault` (and its database for `dependency`), healthy."""
    run = secrets.token_hex(3)
    prefix = FAULTS[fault][0]
    name = f"{prefix}-{run}"
    if fault == "dependency":
        db = _start(client, f"demo-db-{run}", run, env={"ROLE": "db"})
        db_port = db.health_url.split(":")[2].split("/")[0]
        app = _start(
            client,
            name,
            run,
            env={"DEPENDS_NAME": db.name, "DEPENDS_PORT": db_port},
            labels={LABEL_DEPENDS_ON: db.name},
        )
        return DemoService(name=app.name, health_url=app.health_url, run=run, dependency=db.name)
    if fault == "oom":
        return _start(client, name, run, mem_limit=OOM_LIMIT, memswap_limit=OOM_LIMIT)
    return _start(client, name, run)


def _flag(client: docker.DockerClient, name: str, flag: str) -> None:
    result = client.containers.get(name).exec_run(["touch", f"/run/{flag}"])
    if result.exit_code != 0:
        raise DemoError(f"could not break {name}: {result.output!r}")


def break_service(client: docker.DockerClient, service: DemoService, fault: str) -> None:
    """Put the fault in, and wait until it shows as it would to a monitoring system."""
    name = service.name
    if fault == "crash":
        _flag(client, name, "crash")
        wait_for(lambda: _state(client, name)["Status"] == "exited", f"{name} to exit")
    elif fault == "oom":
        _flag(client, name, "oom")
        wait_for(lambda: _state(client, name)["OOMKilled"], f"{name} to be OOM-killed")
    elif fault == "hang":
        _flag(client, name, "hang")
        wait_for(lambda: probe(service.health_url, 1.0) is None, f"{name} to stop answering")
    elif fault == "dependency" and service.dependency:
        db = service.dependency
        client.containers.get(db).stop(timeout=2)
        wait_for(lambda: _state(client, db)["Status"] == "exited", f"{db} to stop")
        wait_for(lambda: probe(service.health_url) == 503, f"{name} to report {db} down")
        wait_for(
            lambda: b"connection refused" in client.containers.get(name).logs(),
            f"{name} to log that {db} is down",
        )
    else:
        raise DemoError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)}")


def remove_containers(client: docker.DockerClient) -> list[str]:
    """Force-remove every container labelled as the demo's (any run); their names."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_DEMO}=1"}):
        try:
            container.remove(force=True, v=True)
            removed.append(str(container.name))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # "removal already in progress"
            if "already in progress" not in str(exc):
                raise
    return removed
