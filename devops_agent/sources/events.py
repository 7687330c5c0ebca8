"""The rules of the events watcher: which engine events are faults, as Alertmanager-shaped alerts.

Pure: no engine and no database here (sources/watcher.py feeds it). Per container it remembers the
last `kill` (a `die` that follows one within the stop timeout is a stop, a restart or a scale-down,
not a fault, whatever its exit code), the last `oom` (the `die` after it is the same incident),
its recent deaths (N within CRASH_LOOP_WINDOW are one ContainerCrashLooping alert), and the event
alerts it has raised and not yet resolved.

An alert's identity is (fingerprint, startsAt), both derived from the engine's own record (its
ID, the container's name, the event's time or the container's FinishedAt), never from this
process: every replica watching one engine raises the same alert for one event, and intake
dedupes them into one run.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devops_agent.alertmanager import WebhookAlert
from devops_agent.labels import COMPOSE_PROJECT, COMPOSE_SERVICE, WATCH

DIED = "ContainerDied"
OOM = "ContainerOOMKilled"
UNHEALTHY = "ContainerUnhealthy"
LOOPING = "ContainerCrashLooping"
SOURCE = "docker-events"
FIRING_ENDS_AT = "0001-01-01T00:00:00Z"
CRASH_LOOP_DEATHS = 3  # deaths within CRASH_LOOP_WINDOW that make a crash loop
DEFAULT_STOP_TIMEOUT = 10.0  # Docker's own default
KILL_MARGIN = 5.0  # seconds past the stop timeout a die still belongs to the kill before it
OOM_DIE_WINDOW = 30.0  # a die this soon after an oom is the same incident
SIGNAL_EXITS = (137, 143)  # SIGKILL, SIGTERM: how a stopped container exits
_FRACTION = re.compile(r"\.(\d+)")


def rfc3339(seconds: float) -> str:
    """A UTC time as Alertmanager writes it (microseconds, Z)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def docker_time(value: str | None) -> float | None:
    """Seconds since the epoch of one of Docker's RFC 3339 times (nanoseconds), None if unset."""
    if not value or value.startswith("0001-"):
        return None
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def watched(labels: dict[str, str]) -> bool:
    return labels.get(WATCH, "").strip().lower() == "true"


@dataclass
class Subject:
    """The container an event is about, as the alert names it."""

    container: str
    labels: dict[str, str]

    @property
    def service(self) -> str:
        return self.labels.get(COMPOSE_SERVICE) or self.container

    @property
    def key(self) -> str:
        """Its identity as a target (tools/docker/targets.key_of): the ledger's target_key."""
        if COMPOSE_SERVICE in self.labels:
            return f"compose:{self.labels.get(COMPOSE_PROJECT, '')}/{self.labels[COMPOSE_SERVICE]}"
        return f"container:{self.container}"


@dataclass
class Memory:
    """What the rules remember about one container."""

    killed_at: float | None = None
    oom_at: float | None = None
    deaths: deque[float] = field(default_factory=deque)
    looping: WebhookAlert | None = None
    firing: dict[str, WebhookAlert] = field(default_factory=dict)
    up: bool = False  # seen started (or healthy) since its last fault


@dataclass
class Death:
    """What the engine says about a container that died (inspect, when it still exists)."""

    exit_code: int
    at: float  # FinishedAt, else the event's time
    oom_killed: bool = False
    stop_timeout: float = DEFAULT_STOP_TIMEOUT


class Rules:
    """Engine events in, alerts out, for the containers of one engine."""

    def __init__(self, engine: str, crash_loop_window: float):
        self.engine = engine
        self.crash_loop_window = crash_loop_window
        self.memory: dict[str, Memory] = {}

    def _mem(self, subject: Subject) -> Memory:
        return self.memory.setdefault(subject.container, Memory())

    def fingerprint(self, subject: Subject, alertname: str) -> str:
        raw = f"{SOURCE}:{self.engine}:{subject.container}:{alertname}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def alert(
        self, subject: Subject, alertname: str, at: float, summary: str, **extra: str
    ) -> WebhookAlert:
        labels = {
            "alertname": alertname,
            "service": subject.service[:255],
            "container": subject.container[:255],
            "severity": "critical",
            "source": SOURCE,
            "engine": self.engine[:255],
            **extra,
        }
        if subject.labels.get(COMPOSE_PROJECT):
            labels["project"] = subject.labels[COMPOSE_PROJECT][:255]
        return WebhookAlert(
            status="firing",
            labels=labels,
            annotations={"summary": summary[:4096], "description": f"docker events: {summary}"},
            startsAt=rfc3339(at),
            endsAt=FIRING_ENDS_AT,
            fingerprint=self.fingerprint(subject, alertname),
        )

    def _raise(self, subject: Subject, alert: WebhookAlert) -> list[WebhookAlert]:
        """A new alert; the one of the same name it replaces (a new death) is resolved."""
        mem = self._mem(subject)
        old = mem.firing.get(alert.labels["alertname"])
        mem.firing[alert.labels["alertname"]] = alert
        mem.up = False
        if old is None or old.startsAt == alert.startsAt:
            return [alert]
        return [_resolved(old, alert.startsAt), alert]

    # -- events -----------------------------------------------------------------------------

    def killed(self, subject: Subject, at: float) -> None:
        self._mem(subject).killed_at = at

    def oom(self, subject: Subject, at: float) -> list[WebhookAlert]:
        mem = self._mem(subject)
        mem.oom_at = at
        if OOM in mem.firing:
            return [mem.firing[OOM]]  # a second oom of the same incident: a duplicate
        summary = f"{subject.container} was killed for running out of memory"
        return self._raise(subject, self.alert(subject, OOM, at, summary))

    def died(self, subject: Subject, death: Death, event_at: float) -> list[WebhookAlert]:
        """A `die`: nothing (a clean exit, a stop), the OOM alert again, a death, or a loop."""
        mem = self._mem(subject)
        killed_at, mem.killed_at = mem.killed_at, None
        if death.exit_code == 0:
            return []
        if killed_at is not None and event_at - killed_at <= death.stop_timeout + KILL_MARGIN:
            return []  # stopped, restarted or removed by someone: not a fault
        oom_recent = mem.oom_at is not None and event_at - mem.oom_at <= OOM_DIE_WINDOW
        if death.oom_killed or oom_recent:
            if OOM in mem.firing:
                return [mem.firing[OOM]]
            summary = f"{subject.container} was OOM-killed (exit code {death.exit_code})"
            alert = self.alert(subject, OOM, death.at, summary, exit_code=str(death.exit_code))
            return self._raise(subject, alert)
        looping = self._count_death(mem, death.at)
        if looping is not None:
            return [looping]
        if self._loop_due(mem):
            summary = f"{subject.container} keeps exiting ({len(mem.deaths)} deaths)"
            start = mem.deaths[0]
            mem.looping = self.alert(
                subject, LOOPING, start, summary, exit_code=str(death.exit_code)
            )
            return self._raise(subject, mem.looping)
        summary = f"{subject.container} exited with code {death.exit_code}"
        alert = self.alert(subject, DIED, death.at, summary, exit_code=str(death.exit_code))
        return self._raise(subject, alert)

    def found_down(self, subject: Subject, death: Death) -> list[WebhookAlert]:
        """A watched container found down on (re)connect, its events unseen: its death as an
        alert (the same identity as the event's would have had: FinishedAt)."""
        mem = self._mem(subject)
        name = OOM if death.oom_killed else DIED
        alert = self.alert(
            subject,
            name,
            death.at,
            f"{subject.container} is down (exit code {death.exit_code})",
            exit_code=str(death.exit_code),
        )
        held = mem.firing.get(name) or (mem.firing.get(LOOPING) if name == DIED else None)
        if held is not None and (held.startsAt == alert.startsAt or held is mem.looping):
            return [held]  # seen already: a duplicate
        return self._raise(subject, alert)

    def _count_death(self, mem: Memory, at: float) -> WebhookAlert | None:
        """Record a death; the loop alert again when a loop is already raised and still on."""
        while mem.deaths and at - mem.deaths[0] > self.crash_loop_window:
            mem.deaths.popleft()
        mem.deaths.append(at)
        if mem.looping is not None and LOOPING in mem.firing:
            mem.up = False
            return mem.looping
        return None

    def _loop_due(self, mem: Memory) -> bool:
        return len(mem.deaths) >= CRASH_LOOP_DEATHS

    def unhealthy(self, subject: Subject, at: float) -> list[WebhookAlert]:
        mem = self._mem(subject)
        if UNHEALTHY in mem.firing:
            return [mem.firing[UNHEALTHY]]
        summary = f"{subject.container} failed its HEALTHCHECK"
        return self._raise(subject, self.alert(subject, UNHEALTHY, at, summary))

    def came_up(self, subject: Subject) -> None:
        """A `start` or `health_status: healthy`: its alerts may resolve (see `resolutions`)."""
        self._mem(subject).up = True

    def forget(self, container: str) -> None:
        self.memory.pop(container, None)

    # -- resolutions ------------------------------------------------------------------------

    def pending(self) -> list[str]:
        """The containers that came up with alerts still firing."""
        return [name for name, mem in self.memory.items() if mem.up and mem.firing]

    def resolve(self, container: str, now: float, healthy: bool) -> list[WebhookAlert]:
        """The resolved alerts of a container that is up (and healthy, when it has a
        HEALTHCHECK). A crash loop resolves only once no death came for CRASH_LOOP_WINDOW."""
        mem = self.memory.get(container)
        if mem is None or not mem.up:
            return []
        out = []
        for name, alert in list(mem.firing.items()):
            if name == UNHEALTHY and not healthy:
                continue
            if name == LOOPING and mem.deaths and now - mem.deaths[-1] < self.crash_loop_window:
                continue
            if name == LOOPING:
                mem.looping = None
                mem.deaths.clear()
            del mem.firing[name]
            out.append(_resolved(alert, rfc3339(now)))
        return out


def _resolved(alert: WebhookAlert, ends_at: str) -> WebhookAlert:
    return alert.model_copy(update={"status": "resolved", "endsAt": ends_at})


def subject_of(event: dict[str, Any]) -> Subject | None:
    """The watched container of a container event, or None."""
    actor = event.get("Actor") or {}
    attributes = dict(actor.get("Attributes") or {})
    name = str(attributes.pop("name", "") or "")
    if not name or not watched(attributes):
        return None
    for key in ("image", "exitCode", "signal", "execDuration"):
        attributes.pop(key, None)
    return Subject(name, {str(k): str(v) for k, v in attributes.items()})


def event_time(event: dict[str, Any]) -> float:
    nano = event.get("timeNano")
    if nano:
        return int(nano) / 1e9
    return float(event.get("time") or 0)
