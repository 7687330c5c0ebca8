"""The Alertmanager webhook payload (version 4), as Alertmanager 0.25+ sends it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from devops_agent.state import Alert

MAX_ALERTS = 1000
MAX_LABELS = 64
MAX_TEXT = 4096


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(max_length=MAX_LABELS)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS)
    startsAt: str = Field(max_length=64)  # noqa: N815
    endsAt: str = Field("", max_length=64)  # noqa: N815
    generatorURL: str = Field("", max_length=MAX_TEXT)  # noqa: N815
    fingerprint: str = Field("", max_length=128)

    def to_alert(self) -> Alert:
        return Alert(
            alertname=self.labels.get("alertname", ""),
            fingerprint=self.fingerprint,
            status=self.status,
            labels={k[:256]: v[:MAX_TEXT] for k, v in self.labels.items()},
            annotations={k[:256]: v[:MAX_TEXT] for k, v in self.annotations.items()},
            startsAt=self.startsAt,
        )


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str = Field("4", max_length=8)
    groupKey: str = Field("", max_length=MAX_TEXT)  # noqa: N815
    truncatedAlerts: int = Field(0, ge=0)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = Field("", max_length=256)
    groupLabels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS)  # noqa: N815
    externalURL: str = Field("", max_length=MAX_TEXT)  # noqa: N815
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=MAX_ALERTS)
