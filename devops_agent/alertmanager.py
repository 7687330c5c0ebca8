"""The Alertmanager webhook payload (version 4), as Alertmanager 0.25+ sends it.

Hardened for hostile input, because anyone who can reach the webhook can send anything:
strict types (no "5" for an int, no number for a string), bounded counts of alerts, labels and
annotations, bounded lengths of every string (label names, label values, annotations, ids), and
no text that cannot be stored as is (NUL characters, lone UTF-16 surrogates), so that what is
accepted can always be stored. Such payloads can never succeed, so they are a clean 422, and
Alertmanager does not retry them. Long annotations (runbook text) are accepted up to a bound
and truncated to MAX_TEXT when stored: losing an alert over its description would be worse.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from devops_agent import sizes
from devops_agent.state import Alert

MAX_ALERTS = 1000
MAX_LABELS = 64
MAX_NAME = 256
MAX_TEXT = 4096
MAX_ANNOTATION = 64 * 1024


def storable(value: str) -> str:
    """Refuse text that a database cannot hold as given (NUL, lone surrogates)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


Storable = AfterValidator(storable)
# strict=True on each field, not on the models: monitoring.py builds them from Python values.
LabelName = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=MAX_NAME), Storable
]
LabelValue = Annotated[str, StringConstraints(strict=True, max_length=MAX_TEXT), Storable]
AnnotationValue = Annotated[
    str, StringConstraints(strict=True, max_length=MAX_ANNOTATION), Storable
]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_LABELS)]
Annotations = Annotated[dict[LabelName, AnnotationValue], Field(max_length=MAX_LABELS)]


Short = Annotated[str, StringConstraints(strict=True, max_length=64), Storable]
Name = Annotated[str, StringConstraints(strict=True, max_length=MAX_NAME), Storable]
Text = Annotated[str, StringConstraints(strict=True, max_length=MAX_TEXT), Storable]
# Stored in columns of these sizes (devops_agent.sizes): longer is a 422, never a failed INSERT.
StartsAt = Annotated[str, StringConstraints(strict=True, max_length=sizes.STARTS_AT), Storable]
Fingerprint = Annotated[str, StringConstraints(strict=True, max_length=sizes.FINGERPRINT), Storable]


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Annotations = Field(default_factory=dict)
    startsAt: StartsAt  # noqa: N815
    endsAt: Short = ""  # noqa: N815
    generatorURL: Text = ""  # noqa: N815
    fingerprint: Fingerprint = ""

    @field_validator("labels")
    @classmethod
    def _alertname_fits(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels.get("alertname", "")) > sizes.ALERTNAME:
            raise ValueError(f"the alertname label must be at most {sizes.ALERTNAME} characters")
        return labels

    def to_alert(self) -> Alert:
        # Validated already (model_construct skips doing it twice: intake's hot path).
        return Alert.model_construct(
            alertname=self.labels.get("alertname", ""),
            fingerprint=self.fingerprint,
            status=self.status,
            labels=dict(self.labels),
            annotations={k: v[:MAX_TEXT] for k, v in self.annotations.items()},
            startsAt=self.startsAt,
        )


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Short = "4"
    groupKey: Text = ""  # noqa: N815
    truncatedAlerts: int = Field(0, strict=True, ge=0, le=sizes.COUNT)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: Name = ""
    groupLabels: Labels = Field(default_factory=dict)  # noqa: N815
    commonLabels: Labels = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: Annotations = Field(default_factory=dict)  # noqa: N815
    externalURL: Text = ""  # noqa: N815
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=MAX_ALERTS)
