"""The monitoring loop: probe TARGET_SERVICES (and MARKET_PREDICTOR_URL) and turn what it sees
into Alertmanager-shaped alerts, handed to the same intake as the webhook.

A failed probe becomes a firing alert whose startsAt is the time the target started failing, and
whose fingerprint is stable per target, so re-sending it every cycle is deduplicated exactly like
Alertmanager's repeats. A recovery becomes the resolved alert of that same (fingerprint, startsAt).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from devops_agent.alertmanager import WebhookAlert, WebhookPayload
from devops_agent.health import http_probe
from devops_agent.operations import DEFAULT_PROBE_TIMEOUT

log = logging.getLogger(__name__)

AlertSink = Callable[[WebhookPayload], Awaitable[Any]]
ProbeHook = Callable[[str, bool], None]
ALERTNAME = "HealthProbeFailed"
FIRING_ENDS_AT = "0001-01-01T00:00:00Z"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class TargetStatus:
    name: str
    url: str
    healthy: bool | None = None
    last_checked: str | None = None
    failing_since: str | None = None
    last_error: str | None = None
    status_code: int | None = None
    latency_ms: float | None = None


def fingerprint(name: str) -> str:
    return hashlib.sha256(f"devops-agent-monitoring:{name}".encode()).hexdigest()[:16]


def alert_for(target: TargetStatus, status: str, ends_at: str = FIRING_ENDS_AT) -> WebhookAlert:
    return WebhookAlert(
        status=status,
        labels={
            "alertname": ALERTNAME,
            "service": target.name,
            "severity": "critical",
            "source": "devops-agent-monitoring",
        },
        annotations={
            "summary": f"{target.name} failed its health probe",
            "description": f"GET {target.url}: {target.last_error or 'failed'}",
        },
        startsAt=target.failing_since or _now(),
        endsAt=ends_at,
        fingerprint=fingerprint(target.name),
    )


class Monitor:
    """Probes the targets every `interval` seconds while started; one cycle on demand."""

    def __init__(
        self,
        targets: dict[str, str],
        interval: float,
        intake: AlertSink,
        *,
        timeout: float = DEFAULT_PROBE_TIMEOUT,
        on_probe: ProbeHook | None = None,
    ):
        self.targets = {name: TargetStatus(name, url) for name, url in targets.items()}
        self.interval = interval
        self.intake = intake
        self.timeout = timeout
        self.on_probe = on_probe
        self.cycles = 0
        self.last_cycle_at: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._cycle_lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> bool:
        """Start the loop; False when it was already running."""
        if self.running:
            return False
        self._task = asyncio.create_task(self._loop(), name="monitoring")
        return True

    async def stop(self) -> bool:
        """Stop the loop; False when it was not running."""
        task, self._task = self._task, None
        if task is None or task.done():
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def _loop(self) -> None:
        while True:
            try:
                await self.cycle()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed cycle must not end the loop
                log.exception("monitoring cycle failed")
            await asyncio.sleep(self.interval)

    async def cycle(self) -> dict[str, Any]:
        """Probe every target once, send the alerts, and return what was seen and sent."""
        async with self._cycle_lock:
            async with httpx.AsyncClient(timeout=self.timeout, trust_env=False) as client:
                names = list(self.targets)
                results = await asyncio.gather(
                    *(http_probe(self.targets[n].url, self.timeout, client) for n in names)
                )
            alerts = [a for n, r in zip(names, results, strict=True) if (a := self._record(n, r))]
            accepted: Any = None
            if alerts:
                payload = WebhookPayload(
                    status="firing" if any(a.status == "firing" for a in alerts) else "resolved",
                    receiver="devops-agent-monitoring",
                    groupKey="devops-agent-monitoring",
                    alerts=alerts,
                )
                accepted = await self.intake(payload)
            self._forget_recovered()
            self.cycles += 1
            self.last_cycle_at = _now()
            return {
                "cycle": self.cycles,
                "at": self.last_cycle_at,
                "targets": [asdict(self.targets[n]) for n in names],
                "alerts_sent": len(alerts),
                "intake": accepted,
            }

    def _record(self, name: str, result: dict[str, Any]) -> WebhookAlert | None:
        """Update a target's status from its probe (devops_agent.health); the alert to send for
        it, if any."""
        target = self.targets[name]
        target.last_checked = _now()
        target.healthy = bool(result["ok"])
        target.status_code = result["status"]
        target.latency_ms = result["latency_ms"]
        if self.on_probe:
            self.on_probe(name, target.healthy)
        if not target.healthy:
            target.last_error = result["summary"]
            target.failing_since = target.failing_since or target.last_checked
            return alert_for(target, "firing")
        if target.failing_since:
            return alert_for(target, "resolved", ends_at=target.last_checked)
        return None

    def _forget_recovered(self) -> None:
        for target in self.targets.values():
            if target.healthy:
                target.failing_since = None
                target.last_error = None

    def status(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "interval": self.interval,
            "cycles": self.cycles,
            "last_cycle_at": self.last_cycle_at,
            "targets": [asdict(t) for t in self.targets.values()],
        }
