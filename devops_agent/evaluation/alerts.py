"""The scenario's alerts as Alertmanager 0.25+ posts them (webhook payload version 4).

One notification per alert, as a route with `group_by: [alertname, service]` sends them. The
fingerprint is Alertmanager's: FNV-1a (64 bits) over the sorted label names and values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devops_agent.evaluation.scenario import AlertSpec

FNV_OFFSET = 14695981039346656037
FNV_PRIME = 1099511628211
SEPARATOR = 0xFF
NEVER = "0001-01-01T00:00:00Z"


def fingerprint(labels: dict[str, str]) -> str:
    """Prometheus' LabelSet fingerprint, as Alertmanager puts it in the payload."""
    value = FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                value = ((value ^ byte) * FNV_PRIME) % 2**64
            value = ((value ^ SEPARATOR) * FNV_PRIME) % 2**64
    return f"{value:016x}"


def payload(
    spec: AlertSpec, fill: Callable[[str], str], now: datetime | None = None
) -> dict[str, Any]:
    """One firing notification for one alert, its strings filled in for the case."""
    labels = {"alertname": spec.alertname} | {k: fill(v) for k, v in spec.labels.items()}
    annotations = {k: fill(v) for k, v in spec.annotations.items()}
    started = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    group = {k: labels[k] for k in ("alertname", "service") if k in labels}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}"
    return {
        "receiver": "devops-agent",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": started,
                "endsAt": NEVER,
                "generatorURL": "http://prometheus.eval:9090/graph?g0.expr=up%3D%3D0",
                "fingerprint": fingerprint(labels),
            }
        ],
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "http://alertmanager.eval:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }


TARGET_LABELS = ("service", "container", "container_name", "name", "job")


def target_names(alert: dict[str, Any]) -> list[str]:
    """The names an alert's labels give its target, in the contract's order."""
    labels = alert.get("labels") or {}
    return [str(labels[k]) for k in TARGET_LABELS if labels.get(k)]
