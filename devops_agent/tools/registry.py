"""The operation registry: the declared operations (devops_agent.operations) and a backend.

A backend implements the operations for one kind of infrastructure; the registry validates
parameters against the declared models before a backend ever sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, ValidationError

from devops_agent import fencing, telemetry
from devops_agent.operations import OPERATIONS, OperationSpec
from devops_agent.redact import redact, redact_data
from devops_agent.state import Ambiguity, Target, Unreachable

ErrorKind = Literal["unreachable", "not_found", "timeout", "invalid", "refused", "failed"]


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


@dataclass
class Reconciliation:
    """Whether an interrupted step happened: `done`, surely `not_done`, or `unknown`."""

    verdict: Literal["done", "not_done", "unknown"]
    detail: str


class Backend(Protocol):
    """One kind of infrastructure. Every method returns; none raises for infrastructure errors."""

    name: str

    async def resolve(
        self, candidates: list[str], project: str | None = None
    ) -> Target | Ambiguity | Unreachable | None:
        """The first candidate name that is exactly one service of this backend (in `project`,
        when given); an Ambiguity when the names that matched mean several; Unreachable when
        the backend could not tell (a gateway or an engine did not answer)."""
        ...

    async def run(self, operation: str, params: BaseModel) -> OperationResult:
        """Run one validated operation."""
        ...

    async def snapshot(self, operation: str, params: BaseModel) -> dict[str, Any] | None:
        """What a mutating step would change, taken before it runs (None: nothing to keep)."""
        ...

    async def reconcile(
        self, operation: str, params: BaseModel, before: dict[str, Any] | None, since: str | None
    ) -> Reconciliation:
        """Whether an interrupted step begun at `since` happened, judged from the
        infrastructure's state against `before` (the snapshot)."""
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
        """Validate then run; a bad operation or parameter is a typed `invalid` result.

        Raises LeaseLost, before the backend is called, when this replica may no longer hold
        the run it acts for (devops_agent.fencing)."""
        parsed = self.validate(operation, params)
        target = str(params.get("target", ""))
        if isinstance(parsed, str):
            return OperationResult.failure(operation, target, "invalid", parsed)
        fencing.check()
        backend = type(self.backend).__name__.lower().removesuffix("backend") or "backend"
        with telemetry.span(f"{backend} {operation}", operation=operation, target=target) as sp:
            result = await self.backend.run(operation, parsed)
            telemetry.annotate(sp, {"backend": backend, "ok": result.ok, "error": result.error})
            if not result.ok:
                telemetry.failed(sp, result.message)
        # Evidence is masked here, where it is gathered: no secret reaches a checkpoint, the
        # audit trail, an incident or the ledger (devops_agent/redact.py).
        return result.model_copy(
            update={"message": redact(result.message), "data": redact_data(result.data)}
        )

    async def snapshot(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        parsed = self.validate(operation, params)
        if isinstance(parsed, str):
            return None
        fencing.check()
        return await self.backend.snapshot(operation, parsed)

    async def reconcile(
        self,
        operation: str,
        params: Mapping[str, Any],
        before: dict[str, Any] | None,
        since: str | None,
    ) -> Reconciliation:
        parsed = self.validate(operation, params)
        if isinstance(parsed, str):
            raise ValueError(parsed)  # a ledger row holds what was validated before it began
        fencing.check()
        return await self.backend.reconcile(operation, parsed, before, since)
