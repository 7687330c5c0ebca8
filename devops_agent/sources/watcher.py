"""The events watcher: one long-lived `events(decode=True)` stream per Docker engine.

A daemon thread reads the stream (the SDK blocks) and hands each event to the event loop, where
sources/events.py decides what it means and the alerts go to the same intake as the webhook.
The engine filters the stream to containers labelled `devops-agent.watch=true`.

Nothing is missed on a reconnect: Docker keeps its events in memory only, so after the engine
restarts `since` cannot be trusted; instead, on every (re)connect the watcher opens the stream
first, then lists the watched containers and raises alerts for those that are down or unhealthy.
While the engine is away it retries with backoff and logs one line (and one when it is back).

Events that belong to the agent's own work are not incidents: while a step of the ledger runs on
the target, its events belong to that run; while the agent acts on a target or watches its
settle window, a `start` or `healthy` does not resolve the target's alerts yet (they resolve once
the run is over).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from devops_agent.alertmanager import WebhookAlert, WebhookPayload
from devops_agent.errors import short_error
from devops_agent.labels import WATCH
from devops_agent.sources.events import (
    DEFAULT_STOP_TIMEOUT,
    SIGNAL_EXITS,
    Death,
    Rules,
    Subject,
    docker_time,
    event_time,
    rfc3339,
    subject_of,
    watched,
)

log = logging.getLogger(__name__)

AlertSink = Callable[[WebhookPayload], Awaitable[Any]]
Activity = Callable[[str], Awaitable[str | None]]  # target key -> "acting" | "settling" | None
RECEIVER = "devops-agent-events"
FILTERS = {"type": "container", "label": f"{WATCH}=true"}
_END = object()


class EngineWatcher:
    """Watches one engine while started; `status()` is what /status shows."""

    def __init__(
        self,
        docker_host: str | None,
        sink: AlertSink,
        activity: Activity,
        crash_loop_window: float,
        *,
        tick: float = 1.0,
        max_backoff: float = 10.0,
    ):
        self.docker_host = docker_host
        self.sink = sink
        self.activity = activity
        self.crash_loop_window = crash_loop_window
        self.tick = tick
        self.max_backoff = max_backoff
        self.rules: Rules | None = None
        self.connected = False
        self.engine: str | None = None
        self.connects = 0
        self.events = 0
        self.alerts_sent = 0
        self.last_event_at: str | None = None
        self.last_error: str | None = None
        self._client: docker.DockerClient | None = None
        self._unsent: list[list[WebhookAlert]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name="events-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def status(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "running": self.running,
            "connected": self.connected,
            "engine": self.engine,
            "docker_host": self.docker_host,
            "connects": self.connects,
            "events": self.events,
            "alerts_sent": self.alerts_sent,
            "last_event_at": self.last_event_at,
            "last_error": self.last_error,
        }

    # -- the connection ---------------------------------------------------------------------

    async def _loop(self) -> None:
        backoff = 0.25
        away = False
        while True:
            try:
                await self._session(was_away=away)
                away, backoff = False, 0.25  # the stream ended (the engine went away)
                self.last_error = "the event stream ended"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # unreachable, refused, a broken stream
                self.last_error = short_error(exc)
                if not away:
                    log.warning(
                        "events watcher: Docker engine %s unreachable (%s); retrying with backoff",
                        self.docker_host or "(default)",
                        self.last_error,
                    )
                away = True
            self.connected = False
            await asyncio.sleep(backoff)
            backoff = min(self.max_backoff, backoff * 2)

    async def _session(self, was_away: bool) -> None:
        loop = asyncio.get_running_loop()
        client = await asyncio.to_thread(self._connect)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stream = await asyncio.to_thread(client.events, decode=True, filters=FILTERS)
        pump = threading.Thread(
            target=_pump, args=(stream, loop, queue), name="docker-events", daemon=True
        )
        pump.start()
        try:
            self.connected, self._client = True, client
            self.connects += 1
            if was_away:
                log.warning("events watcher: Docker engine %s is back", self.docker_host)
            else:
                log.info("events watcher: watching engine %s", self.engine)
            await self._reconcile(client)
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self.tick)
                except TimeoutError:
                    await self._housekeeping()
                    continue
                if event is _END:
                    return
                await self._handle(event)
        finally:
            self._client = None
            with contextlib.suppress(Exception):
                stream.close()
            with contextlib.suppress(Exception):
                client.close()

    def _connect(self) -> docker.DockerClient:
        client = (
            docker.DockerClient(base_url=self.docker_host, timeout=30)
            if self.docker_host
            else docker.from_env(timeout=30)
        )
        engine = str(client.info().get("ID") or self.docker_host or "docker")
        if self.rules is None or self.rules.engine != engine:
            self.rules = Rules(engine, self.crash_loop_window)
        self.engine = engine
        return client

    # -- events -----------------------------------------------------------------------------

    async def _handle(self, event: dict[str, Any]) -> None:
        subject = subject_of(event)
        rules = self.rules
        if subject is None or rules is None:
            return
        self.events += 1
        at = event_time(event)
        self.last_event_at = rfc3339(at)
        action = str(event.get("Action") or "")
        if action == "kill":
            rules.killed(subject, at)
        elif action == "destroy":
            rules.forget(subject.container)
        elif action in ("start", "health_status: healthy"):
            rules.came_up(subject)
            await self._resolve(subject.container)
        elif action in ("die", "oom", "health_status: unhealthy"):
            if await self.activity(subject.key) == "acting":
                return  # a step of the ledger is running on it: its events belong to that run
            if action == "oom":
                await self._send(rules.oom(subject, at))
            elif action == "die":
                death = await asyncio.to_thread(self._death, event, at)
                await self._send(rules.died(subject, death, at))
            else:
                await self._send(rules.unhealthy(subject, at))

    def _death(self, event: dict[str, Any], at: float) -> Death:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        exit_code = _int(attributes.get("exitCode"))
        client = self._client
        if client is None:
            return Death(exit_code, at)
        try:
            attrs = client.api.inspect_container(str(event.get("id") or attributes.get("name")))
        except (NotFound, DockerException):
            return Death(exit_code, at)
        return _death_of(attrs, at)

    async def _reconcile(self, client: docker.DockerClient) -> None:
        """On every (re)connect: alerts for the watched containers that are down or unhealthy."""
        rules = self.rules
        assert rules is not None
        found = await asyncio.to_thread(
            client.api.containers, all=True, filters={"label": FILTERS["label"]}
        )
        for summary in found:
            try:
                attrs = await asyncio.to_thread(client.api.inspect_container, summary["Id"])
            except (NotFound, DockerException):
                continue
            labels = dict((attrs.get("Config") or {}).get("Labels") or {})
            if not watched(labels):
                continue
            subject = Subject(str(attrs.get("Name", "")).lstrip("/"), labels)
            state = attrs.get("State") or {}
            status = state.get("Status")
            if status in ("exited", "dead", "restarting"):
                death = _death_of(attrs, time.time())
                if death.exit_code == 0 or (
                    death.exit_code in SIGNAL_EXITS and not death.oom_killed
                ):
                    continue  # a clean exit or a stop: not a fault
                if await self.activity(subject.key) == "acting":
                    continue
                await self._send(rules.found_down(subject, death))
            elif status == "running":
                health = state.get("Health") or {}
                if health.get("Status") == "unhealthy":
                    if await self.activity(subject.key) != "acting":
                        await self._send(rules.unhealthy(subject, _failing_since(health)))
                else:
                    rules.came_up(subject)
                    await self._resolve(subject.container)

    async def _housekeeping(self) -> None:
        """Each quiet tick: resend what intake could not take, resolve what came up since."""
        unsent, self._unsent = self._unsent, []
        for alerts in unsent:
            await self._send(alerts)
        if self.rules is not None:
            for container in self.rules.pending():
                await self._resolve(container)

    async def _resolve(self, container: str) -> None:
        """Resolve a container's alerts once it is up, unless the agent is acting on it or in
        its settle window (then a later tick does, when the run is over)."""
        rules = self.rules
        if rules is None or not rules.memory.get(container) or not rules.memory[container].firing:
            return
        client = self._client
        if client is None:
            return
        try:
            attrs = await asyncio.to_thread(client.api.inspect_container, container)
        except (NotFound, DockerException):
            return
        state = attrs.get("State") or {}
        if state.get("Status") != "running":
            rules.memory[container].up = False
            return
        labels = dict((attrs.get("Config") or {}).get("Labels") or {})
        if await self.activity(Subject(container, labels).key) is not None:
            return
        healthy = (state.get("Health") or {}).get("Status") in (None, "healthy")
        await self._send(rules.resolve(container, time.time(), healthy))

    async def _send(self, alerts: list[WebhookAlert]) -> None:
        if not alerts:
            return
        firing = any(a.status == "firing" for a in alerts)
        payload = WebhookPayload(
            status="firing" if firing else "resolved",
            receiver=RECEIVER,
            groupKey=f"{RECEIVER}:{self.engine}",
            alerts=alerts,
        )
        try:
            await self.sink(payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away: try again on the next tick
            log.warning("events watcher: intake failed (%s); will retry", short_error(exc))
            self._unsent.append(alerts)
            return
        self.alerts_sent += len(alerts)
        for alert in alerts:
            log.info(
                "events watcher: %s %s for %s",
                alert.status,
                alert.labels.get("alertname"),
                alert.labels.get("container"),
            )


def _pump(stream: Any, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
    """In the reader thread: every event into the loop's queue, then the end marker."""
    try:
        for event in stream:
            if isinstance(event, dict):
                loop.call_soon_threadsafe(queue.put_nowait, event)
    except Exception:  # noqa: S110 (the stream broke: the session ends and reconnects)
        pass
    finally:
        with contextlib.suppress(RuntimeError):  # the loop is closed (shutdown)
            loop.call_soon_threadsafe(queue.put_nowait, _END)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _death_of(attrs: dict[str, Any], fallback: float) -> Death:
    state = attrs.get("State") or {}
    stop_timeout = (attrs.get("Config") or {}).get("StopTimeout")
    return Death(
        exit_code=_int(state.get("ExitCode")),
        at=docker_time(state.get("FinishedAt")) or fallback,
        oom_killed=bool(state.get("OOMKilled")),
        stop_timeout=float(stop_timeout) if stop_timeout is not None else DEFAULT_STOP_TIMEOUT,
    )


def _failing_since(health: dict[str, Any]) -> float:
    """When the trailing run of failed health checks began (the same on every replica)."""
    since = None
    for entry in reversed(health.get("Log") or []):
        if entry.get("ExitCode") == 0:
            break
        since = docker_time(entry.get("Start")) or since
    return since or time.time()
