"""Alert intake, shared by the webhook and the monitoring loop: group, store, then start runs."""

from __future__ import annotations

import logging
from typing import Any

from devops_agent import sizes
from devops_agent.alertmanager import WebhookPayload
from devops_agent.memory.intake import AlertIntake, GroupOutcome
from devops_agent.memory.run_repo import RunRepo
from devops_agent.nodes.common import TARGET_LABELS
from devops_agent.orchestration.manager import RunManager
from devops_agent.orchestration.metrics import Metrics
from devops_agent.state import Alert

log = logging.getLogger(__name__)
UNKNOWN_SERVICE = "unknown"


def service_of(alert: Alert) -> str:
    """The first of the target labels (service, container, container_name, name, job)."""
    for label in TARGET_LABELS:
        value = alert.labels.get(label, "").strip()
        if value:
            return value[: sizes.SERVICE]
    return UNKNOWN_SERVICE


def group_by_service(alerts: list[Alert]) -> list[tuple[str, list[Alert]]]:
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(service_of(alert), []).append(alert)
    return list(groups.items())


class Intake:
    def __init__(self, repo: RunRepo, manager: RunManager, metrics: Metrics):
        self.store = AlertIntake(repo)
        self.manager = manager
        self.metrics = metrics

    async def accept(self, payload: WebhookPayload) -> dict[str, Any]:
        """Store the payload's alerts durably, then start or join runs; the 202 body.

        Raises when the alerts could not be stored (the caller answers 503, Alertmanager retries).
        """
        alerts = [a.to_alert() for a in payload.alerts]
        truncated = payload.truncatedAlerts
        result = await self.store.ingest(group_by_service(alerts), truncated)
        runs: list[dict[str, Any]] = []
        for group in result.groups:
            if group.run_id is None:
                continue
            runs.append(
                {
                    "run_id": group.run_id,
                    "service": group.service,
                    "deduplicated": group.deduplicated,
                }
            )
            if group.created:
                self.manager.start(group.run_id)
            elif group.joined_resolved:
                self.manager.check_resolved(group.run_id)
        for alert, dup in _dedup_flags(alerts, result.groups):
            self.metrics.received(alert.status, dup)
        if truncated:
            self.metrics.alerts_truncated.inc(truncated)
            log.warning(
                "Alertmanager left %d alert(s) out of a notification (truncatedAlerts; its "
                "max_alerts is too low for the group); kept on run(s) %s",
                truncated,
                ", ".join(str(r["run_id"]) for r in runs) or "none",
            )
        return {"runs": runs, "ignored": result.ignored}


def _dedup_flags(alerts: list[Alert], groups: list[GroupOutcome]) -> list[tuple[Alert, bool]]:
    by_service = {g.service: g.deduplicated for g in groups}
    return [(a, by_service.get(service_of(a), False)) for a in alerts]
