"""The baselines the agent is measured against, on the same scenarios in the same run.

- `nothing`: does nothing.
- `restart-policy`: Docker's own `--restart on-failure` on every container of the case.
- `autoheal`: restarts whatever Docker's HEALTHCHECK calls unhealthy, polling the engine every
  5 seconds with a 10 s stop timeout (the defaults of the widely used autoheal container).
- `restart-target`: restarts the alert's target at once (`docker restart` of every container of
  the service its labels name), whatever the alert says.

Baselines only ever touch the evaluation's own containers (the run's label).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import docker
import docker.errors

from devops_agent.evaluation.alerts import target_names
from devops_agent.evaluation.scoring import Verdict
from devops_agent.evaluation.world import LABEL_CASE, LABEL_RUN, World

AUTOHEAL_INTERVAL = 5.0
AUTOHEAL_STOP_TIMEOUT = 10
COMPOSE_SERVICE = "com.docker.compose.service"


class Contender:
    """The interface of every contender; the default does nothing."""

    name = "nothing"
    continuous = False  # acts over time by itself (judged after act_within), not once per alert
    restart_policy: str | None = None  # set on every container of the case

    def begin(self, world: World) -> None:
        self.world = world

    def alerts(self, payloads: list[dict[str, Any]]) -> None:
        """The scenario's alerts, once the fault is visible."""

    def wait(self, deadline: float) -> None:
        """Until the contender is done with the alerts, or the deadline (time.monotonic())."""

    def verdict(self) -> Verdict:
        return Verdict()

    def end(self) -> None:
        """Stop whatever runs for this case."""


class Nothing(Contender):
    name = "nothing"


class RestartPolicy(Contender):
    name = "restart-policy"
    continuous = True
    restart_policy = "on-failure"


class Autoheal(Contender):
    name = "autoheal"
    continuous = True

    def begin(self, world: World) -> None:
        super().begin(world)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="autoheal", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        client = self.world.client
        label = f"{LABEL_CASE}={self.world.case_id}"
        while not self._stop.wait(AUTOHEAL_INTERVAL):
            with contextlib.suppress(docker.errors.DockerException):
                for c in client.containers.list(filters={"label": label, "health": "unhealthy"}):
                    with contextlib.suppress(docker.errors.DockerException):
                        c.restart(timeout=AUTOHEAL_STOP_TIMEOUT)

    def end(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class RestartTarget(Contender):
    name = "restart-target"

    def alerts(self, payloads: list[dict[str, Any]]) -> None:
        client = self.world.client
        for payload in payloads:
            for alert in payload["alerts"]:
                for container in self._containers(client, target_names(alert)):
                    with contextlib.suppress(docker.errors.DockerException):
                        container.restart(timeout=10)

    def _containers(self, client: docker.DockerClient, names: list[str]) -> list[Any]:
        """The first name that is a container or a Compose service of this run."""
        mine = f"{LABEL_RUN}={self.world.run_id}"
        ours = client.containers.list(all=True, filters={"label": mine})
        for name in names:
            found = [c for c in ours if c.name == name]
            found = found or [c for c in ours if c.labels.get(COMPOSE_SERVICE) == name]
            if found:
                return found
        return []


BASELINES: tuple[type[Contender], ...] = (Nothing, RestartPolicy, Autoheal, RestartTarget)
