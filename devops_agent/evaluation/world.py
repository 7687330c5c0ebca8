"""One case's containers: set up from a scenario, broken by its fault, removed afterwards.

Every container carries the labels `devops-agent.eval=1`, the run's id, the case's id and its
role, so the Docker engine's event log can be read per case (replicas cloned by the agent keep
the labels) and everything the evaluation made can be found and removed, also after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from devops_agent.evaluation import image
from devops_agent.evaluation.probe import Observation, needs, observe, satisfied
from devops_agent.evaluation.scenario import TOKEN, Condition, ContainerSpec, Scenario

LABEL_EVAL = "devops-agent.eval"
LABEL_RUN = "devops-agent.eval.run"
LABEL_CASE = "devops-agent.eval.case"
LABEL_ROLE = "devops-agent.eval.role"
LABEL_HEALTH_URL = "devops-agent.health-url"
LABEL_DEPENDS_ON = "devops-agent.depends-on"
COMPOSE = "com.docker.compose"


@dataclass
class Member:
    """A role of the case, as made: `service` is the name alerts use."""

    role: str
    service: str
    container: str
    port: int
    spec: ContainerSpec

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{image.HEALTH_PATH}"


def free_port_block(size: int = image.REPLICA_PORTS) -> int:
    """A port on 127.0.0.1 with the `size - 1` ports above it free too (for replicas)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + size < 65535 and all(_free(port + k) for k in range(1, size)):
            return port
    raise RuntimeError("no block of free ports on 127.0.0.1")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def restart_policy(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    name, _, retries = text.partition(":")
    policy: dict[str, Any] = {"Name": name}
    if retries:
        policy["MaximumRetryCount"] = int(retries)
    return policy


@dataclass
class World:
    """The containers of one (scenario, contender) case."""

    client: docker.DockerClient
    scenario: Scenario
    run_id: str
    case_id: str
    policy_override: str | None = None  # the restart-policy baseline sets one on everything
    members: dict[str, Member] = field(default_factory=dict)

    def __post_init__(self) -> None:
        suffix = secrets.token_hex(3)
        for role, spec in self.scenario.containers.items():
            service = f"{role}-{suffix}"
            container = f"{service}-1" if spec.compose else service
            self.members[role] = Member(role, service, container, free_port_block(), spec)

    # -- names ------------------------------------------------------------------------------

    def fill(self, text: str) -> str:
        """Replace ${role}, ${role.container} and ${role.port} in a scenario string."""

        def one(match: Any) -> str:
            member = self.members.get(match.group(1))
            if member is None:
                return str(match.group(0))
            part = match.group(2)
            if part == "port":
                return str(member.port)
            return member.container if part == "container" else member.service

        return TOKEN.sub(one, text)

    def labels(self, role: str) -> dict[str, str]:
        return {
            LABEL_EVAL: "1",
            LABEL_RUN: self.run_id,
            LABEL_CASE: self.case_id,
            LABEL_ROLE: role,
        }

    # -- set-up -----------------------------------------------------------------------------

    def setup(self) -> None:
        for role in self.members:
            self._create(role)
        for role, member in self.members.items():
            if member.spec.ready == "healthy":
                self.wait(Condition(role=role, http=200), 30, f"{member.container} to answer")

    def _create(self, role: str, env_change: dict[str, str | None] | None = None) -> Container:
        member = self.members[role]
        spec = member.spec
        env: dict[str, str | None] = {
            "PORT": str(member.port),
            "DATABASE_URL": image.DATABASE_URL,
            "APP_WORKLOAD": spec.workload,
        }
        if spec.upstream:
            upstream = self.members[spec.upstream]
            env |= {"UPSTREAM_NAME": upstream.service, "UPSTREAM_PORT": str(upstream.port)}
            env["UPSTREAM_CHECK"] = spec.upstream_check
        if spec.health_delay is not None:
            env["HEALTH_DELAY"] = f"{spec.health_delay:g}"
        env |= {k: (self.fill(v) if v is not None else None) for k, v in spec.env.items()}
        env |= env_change or {}
        labels = self.labels(role) | {LABEL_HEALTH_URL: member.health_url}
        if spec.depends_on:
            labels[LABEL_DEPENDS_ON] = ",".join(self.members[r].service for r in spec.depends_on)
        if spec.compose:
            labels |= {
                f"{COMPOSE}.project": f"eval{member.service.rsplit('-', 1)[-1]}",
                f"{COMPOSE}.service": member.service,
                f"{COMPOSE}.container-number": "1",
                f"{COMPOSE}.oneoff": "False",
            }
        kwargs: dict[str, Any] = {}
        if spec.memory:
            kwargs |= {"mem_limit": spec.memory, "memswap_limit": spec.memory}
        if spec.cpus:
            kwargs["nano_cpus"] = int(spec.cpus * 1e9)
        if spec.healthcheck:
            kwargs["healthcheck"] = image.HEALTHCHECK
        policy = restart_policy(self.policy_override or spec.restart_policy)
        if policy:
            kwargs["restart_policy"] = policy
        return self.client.containers.run(
            image.IMAGE,
            name=member.container,
            detach=True,
            network_mode="host",
            environment={k: v for k, v in env.items() if v is not None},
            labels=labels,
            tmpfs={"/run": "", **spec.tmpfs},
            stop_signal="SIGTERM",
            **kwargs,
        )

    # -- the fault --------------------------------------------------------------------------

    def inject(self) -> None:
        """Run the scenario's fault steps, in order."""
        for step in self.scenario.fault:
            if step.flag:
                folder = "/state" if step.flag.flag in ("crash-at-start", "relapse") else "/run"
                self._exec(step.flag.role, ["touch", f"{folder}/{step.flag.flag}"])
            elif step.pause:
                self.container(step.pause).pause()
            elif step.stop:
                self.container(step.stop).stop(timeout=5)
            elif step.log:
                fd = 1 if step.log.stream == "stdout" else 2
                for line in step.log.lines:
                    # The line is an argument, never part of the shell's script.
                    script = f'printf "%s\\n" "$1" >/proc/1/fd/{fd}'
                    self._exec(step.log.role, ["sh", "-c", script, "sh", self.fill(line)])
            elif step.redeploy:
                role = step.redeploy.role
                self.client.api.remove_container(self.members[role].container, force=True)
                env = {
                    k: (self.fill(v) if v is not None else None)
                    for k, v in step.redeploy.env.items()
                }
                self._create(role, env)

    def _exec(self, role: str, argv: list[str]) -> None:
        result = self.container(role).exec_run(argv)
        if result.exit_code != 0:
            raise RuntimeError(f"{argv[0]} in {self.members[role].container}: {result.output!r}")

    # -- looking ----------------------------------------------------------------------------

    def container(self, role: str) -> Container:
        return self.client.containers.get(self.members[role].container)

    def look(self, role: str, conditions: list[Condition]) -> Observation:
        """One observation of a role, gathering what these conditions need."""
        member = self.members[role]
        return observe(self.client, member.container, member.health_url, **needs(conditions))

    def holds(self, condition: Condition) -> bool:
        """Whether a condition holds now."""
        return satisfied(condition, self.look(condition.role, [condition]), self.fill)

    def wait(self, condition: Condition, timeout: float, what: str) -> float:
        """Wait until the condition holds; returns when the successful check began."""
        deadline = time.monotonic() + timeout
        while True:
            began = time.time()
            if self.holds(condition):
                return began
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(0.1)

    def wait_visible(self, timeout: float) -> float | None:
        """Wait until every `visible` condition holds; the time it did, None on timeout."""
        deadline = time.monotonic() + timeout
        seen = time.time()
        for condition in self.scenario.visible:
            left = deadline - time.monotonic()
            try:
                seen = self.wait(condition, max(left, 0.1), "the fault to be visible")
            except TimeoutError:
                return None
        return seen

    # -- clean-up ---------------------------------------------------------------------------

    def cleanup(self) -> None:
        remove_labelled(self.client, f"{LABEL_CASE}={self.case_id}")


def remove_labelled(client: docker.DockerClient, label: str) -> int:
    """Force-remove every container with this label; how many were removed."""
    removed = 0
    for c in client.containers.list(all=True, filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_container(str(c.id), force=True, v=True)
            removed += 1
    return removed
