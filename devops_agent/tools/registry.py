"""The operation registry: what each operation takes, whether it changes anything, its risk.

A backend implements the operations for one kind of infrastructure; the registry validates
parameters against the declared models before a backend ever sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devops_agent.redact import redact, redact_data
from devops_agent.state import Target

Risk = Literal["low", "medium", "high"]
ErrorKind = Literal["unreachable", "not_found", "timeout", "invalid", "refused", "failed"]


DEFAULT_PROBE_TIMEOUT = 3.0  # PROBE_TIMEOUT's default


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(min_length=1, max_length=253, description="service or container name")


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
    """Set the number of replicas of a Compose service."""

    replicas: int = Field(ge=0, le=100)


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


class OperationResult(BaseModel):
    """What an operation returned: never an exception, always this."""

    operation: str
    target: str
    ok: bool
    error: ErrorKind | None = None
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def failure(
        cls, operation: str, target: str, error: ErrorKind, message: str
    ) -> OperationResult:
        return cls(operation=operation, target=target, ok=False, error=error, message=message)


class Backend(Protocol):
    """One kind of infrastructure. Every method returns; none raises for infrastructure errors."""

    name: str

    async def resolve(self, candidates: list[str]) -> Target | None:
        """The first candidate name that is a service of this backend."""
        ...

    async def run(self, operation: str, params: BaseModel) -> OperationResult:
        """Run one validated operation."""
        ...

    async def ping(self) -> OperationResult:
        """Whether the backend is reachable."""
        ...


class Registry:
    """The operations and the backend that carries them out. `defaults` are parameters an
    operation gets when its caller (a node, the LLM) does not give them, such as PROBE_TIMEOUT."""

    def __init__(
        self,
        backend: Backend,
        operations: Mapping[str, OperationSpec] = OPERATIONS,
        defaults: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        self.backend = backend
        self.operations = dict(operations)
        self.defaults = {name: dict(values) for name, values in (defaults or {}).items()}

    def spec(self, operation: str) -> OperationSpec | None:
        return self.operations.get(operation)

    def validate(self, operation: str, params: Mapping[str, Any]) -> BaseModel | str:
        """The parsed parameters, or a one-line reason why they are not acceptable."""
        spec = self.operations.get(operation)
        if spec is None:
            return f"unknown operation {operation!r}"
        try:
            return spec.params.model_validate({**self.defaults.get(operation, {}), **params})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "params"
            return f"{operation}: {where}: {err['msg']}"

    async def run(self, operation: str, params: Mapping[str, Any]) -> OperationResult:
        """Validate then run; a bad operation or parameter is a typed `invalid` result."""
        parsed = self.validate(operation, params)
        target = str(params.get("target", ""))
        if isinstance(parsed, str):
            return OperationResult.failure(operation, target, "invalid", parsed)
        result = await self.backend.run(operation, parsed)
        # Evidence is masked here, where it is gathered: no secret reaches a checkpoint, the
        # audit trail, an incident or the ledger (devops_agent/redact.py).
        return result.model_copy(
            update={"message": redact(result.message), "data": redact_data(result.data)}
        )
