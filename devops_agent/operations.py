"""The operations: what each one takes, whether it changes anything, its risk and its inverse.

Declared once, as data, below everything that uses them: the policy reads `mutating` and
`risk`, the registry validates parameters against the models before a backend sees them, the
LLM's tools are built from the same models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Risk = Literal["low", "medium", "high"]
RISK_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2}


DEFAULT_PROBE_TIMEOUT = 3.0  # PROBE_TIMEOUT's default


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(min_length=1, max_length=253, description="service or container name")
    project: str | None = Field(
        None, max_length=253, description="the Compose project, where several have the service"
    )


class HealthCheckParams(_Params):
    """Container state, health, restart count, exit code, OOMKilled, and the HTTP probe."""

    probe_timeout: float = Field(
        DEFAULT_PROBE_TIMEOUT, gt=0, le=60, description="seconds the HTTP probe waits for an answer"
    )


class GetLogsParams(_Params):
    """The last `lines` lines of the service's logs, with the error lines picked out."""

    lines: int = Field(200, ge=1, le=5000)


class CheckResourcesParams(_Params):
    """CPU and memory use against the limits, with CPU throttling."""


class RestartServiceParams(_Params):
    """Restart every container of the service (start when stopped, unpause when paused)."""

    timeout: int = Field(5, ge=0, le=300, description="seconds to wait for a stop")


class ScaleServiceParams(_Params):
    """Set the number of replicas of a Compose service (never 0: the agent does not stop a service)."""

    replicas: int = Field(ge=1, le=100)


class ExecuteCommandParams(_Params):
    """Run an allowlisted argv inside the service's first container. Never a shell."""

    argv: list[str] = Field(min_length=1, max_length=32)
    timeout: int = Field(30, ge=1, le=300)


@dataclass(frozen=True)
class OperationSpec:
    name: str
    params: type[_Params]
    mutating: bool
    risk: Risk
    inverse: str | None = None
    description: str = ""


OPERATIONS: dict[str, OperationSpec] = {
    spec.name: spec
    for spec in (
        OperationSpec("health_check", HealthCheckParams, False, "low"),
        OperationSpec("get_logs", GetLogsParams, False, "low"),
        OperationSpec("check_resources", CheckResourcesParams, False, "low"),
        OperationSpec("restart_service", RestartServiceParams, True, "medium"),
        OperationSpec("scale_service", ScaleServiceParams, True, "medium", inverse="scale_service"),
        OperationSpec("execute_command", ExecuteCommandParams, True, "high"),
    )
}
for _spec in OPERATIONS.values():
    object.__setattr__(_spec, "description", (_spec.params.__doc__ or "").strip())
