"""A remediation workflow, as data: when it applies, and its phases.

    id: dependency-down
    description: start the dependency, verify the caller, else restart the caller
    when: {categories: [dependency_failure]}
    when_not: {labels: {devops-agent.auto: "off"}}
    preconditions: [dependency_down]
    phases:
      - name: start-dependency
        steps: [{operation: restart_service, target: "{dependency}"}]
        success: {healthy_within: 30}
        on_failure: next
      - name: restart-caller
        steps: [{operation: restart_service, target: "{target}"}]
        on_failure: escalate

Step targets and parameter values are templates of a few known names ({target},
{dependency}, {replicas}, {replicas_plus_one}); a phase succeeds when its targets are healthy
within `healthy_within` seconds (default VALIDATE_TIMEOUT), a Prometheus query is under a
threshold, and a log pattern is absent, as its `success` says; what follows a failure is the
next phase, a rollback (then escalation) or an escalation. Every field is checked when the
catalog loads: an unknown key, operation, template name or precondition stops the start.
"""

from __future__ import annotations

import re
from string import Formatter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devops_agent.operations import OPERATIONS
from devops_agent.state import CATEGORIES

TEMPLATE_NAMES = ("target", "dependency", "replicas", "replicas_plus_one")
PRECONDITIONS = ("scalable", "dependency_down", "target_down")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _names(text: str) -> list[str]:
    return [name for _, name, _, _ in Formatter().parse(text) if name is not None]


def _check_template(value: Any, where: str) -> None:
    if isinstance(value, str):
        unknown = [n for n in _names(value) if n not in TEMPLATE_NAMES]
        if unknown:
            raise ValueError(
                f"{where}: unknown template name {{{unknown[0]}}} (known: {', '.join(TEMPLATE_NAMES)})"
            )


class StepTemplate(_Strict):
    operation: str
    target: str = "{target}"
    params: dict[str, Any] = Field(default_factory=dict)
    rationale: str = ""

    @field_validator("operation")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in OPERATIONS:
            raise ValueError(f"{value!r} is not an operation of the registry")
        return value

    @model_validator(mode="after")
    def _templates(self) -> StepTemplate:
        _check_template(self.target, "target")
        _check_template(self.rationale, "rationale")
        for key, value in self.params.items():
            _check_template(value, f"params.{key}")
        return self


class Success(_Strict):
    healthy_within: float | None = Field(None, gt=0, le=3600)
    prometheus: PromCheck | None = None
    log_absent: str | None = None

    @field_validator("log_absent")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class PromCheck(_Strict):
    """A PromQL query whose first value must be under `below`; `$target` in it becomes the
    target's name as a PromQL string ("web"), never as syntax."""

    query: str = Field(min_length=1)
    below: float


class Phase(_Strict):
    name: str = Field(min_length=1, max_length=64)
    steps: list[StepTemplate] = Field(min_length=1, max_length=10)
    success: Success = Field(default_factory=Success)
    on_failure: Literal["next", "rollback", "escalate"] = "escalate"


class Selector(_Strict):
    categories: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)  # exact values, or "*" for "present"

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a diagnosis category")
        return value

    def matches(self, category: str, labels: dict[str, str]) -> bool:
        if self.categories and category not in self.categories:
            return False
        return all(
            key in labels and (want == "*" or labels[key] == want)
            for key, want in self.labels.items()
        )

    def empty(self) -> bool:
        return not self.categories and not self.labels


class Workflow(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = ""
    when: Selector
    when_not: Selector = Field(default_factory=Selector)
    preconditions: list[str] = Field(default_factory=list)
    phases: list[Phase] = Field(min_length=1, max_length=5)
    source: str = Field("builtin", exclude=True)  # builtin, or the operator's file

    @field_validator("preconditions")
    @classmethod
    def _preconditions(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in PRECONDITIONS]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a precondition ({', '.join(PRECONDITIONS)})")
        return value

    @model_validator(mode="after")
    def _when(self) -> Workflow:
        if not self.when.categories:
            raise ValueError("when.categories: name the categories the workflow is for")
        return self


Success.model_rebuild()
