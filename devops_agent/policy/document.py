"""The policy file (POLICY_FILE): rules, maintenance windows, silenced services. Strict.

    rules:                       # every matching rule applies; fnmatch patterns
      - {operation: restart_service, target: "db-*", verdict: approval}
      - {operation: execute_command, target: "*", verdict: forbid}
    maintenance_windows:         # mutating actions on these services wait for a person
      - {services: [checkout], start: "2026-11-24T22:00:00Z", end: "2026-11-25T02:00:00Z"}
    silenced: [legacy-batch]     # never acted on

A file that does not say what it seems to say is refused at start, with one line naming the file,
the key and the closest valid name: an unknown key (`silence:` for `silenced:`), an operation
pattern that matches no operation of the registry (a typo would widen the rule to nothing, or
with a wildcard to everything), a verdict other than `approval` or `forbid`. Rules do not shadow
each other: a `forbid` anywhere in the list forbids, whatever comes before it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from devops_agent.config import SettingsError
from devops_agent.operations import OPERATIONS
from devops_agent.state import PlanStep


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rule(_Strict):
    operation: str = "*"
    target: str = "*"
    verdict: Literal["approval", "forbid"]

    @field_validator("operation")
    @classmethod
    def _known_operation(cls, value: str) -> str:
        if not any(fnmatchcase(name, value) for name in OPERATIONS):
            close = difflib.get_close_matches(value, list(OPERATIONS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"{value!r} matches no operation of the registry{hint}")
        return value

    def matches(self, step: PlanStep) -> bool:
        return fnmatchcase(step.operation, self.operation) and fnmatchcase(step.target, self.target)


class MaintenanceWindow(_Strict):
    services: list[str] = Field(min_length=1)
    start: datetime
    end: datetime

    def covers(self, service: str, now: datetime) -> bool:
        return self.start <= now < self.end and any(fnmatchcase(service, p) for p in self.services)


class PolicyDocument(_Strict):
    rules: list[Rule] = Field(default_factory=list)
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    silenced: list[str] = Field(default_factory=list)

    @property
    def digest(self) -> str:
        """A short hash of the document, recorded with each verdict (the policy's version)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def verdicts_for(self, step: PlanStep) -> set[str]:
        """The verdicts of every rule that matches the step."""
        return {rule.verdict for rule in self.rules if rule.matches(step)}

    def silences(self, target: str) -> bool:
        return any(fnmatchcase(target, pattern) for pattern in self.silenced)


_MODELS: dict[str, type[BaseModel]] = {"rules": Rule, "maintenance_windows": MaintenanceWindow}
_VERDICTS = ("approval", "forbid")


def _unknown_key(raw: Any) -> str | None:
    """`where: key` and the closest valid name, for the first key no model knows."""

    def check(mapping: Any, model: type[BaseModel], where: str) -> str | None:
        if not isinstance(mapping, dict):
            return None
        valid = list(model.model_fields)
        for key in mapping:
            if key not in valid:
                close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]}?)" if close else f" (valid: {', '.join(valid)})"
                return f"{where}{key}: unknown key{hint}"
        return None

    found = check(raw, PolicyDocument, "")
    if found or not isinstance(raw, dict):
        return found
    for section, model in _MODELS.items():
        for i, item in enumerate(raw.get(section) or []):
            found = check(item, model, f"{section}.{i}.")
            if found:
                return found
    return None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    if where.endswith(".verdict"):
        message = f"must be one of {', '.join(_VERDICTS)} ({message})"
    return f"{where}: {message}"


def load_policy(path: Path | None) -> PolicyDocument:
    """The POLICY_FILE, validated; a bad file is a SettingsError with one clear line."""
    if path is None:
        return PolicyDocument()
    prefix = f"invalid setting POLICY_FILE: {path}"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise SettingsError(f"{prefix}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(f"{prefix}: not YAML: {first}") from None
    if not isinstance(raw, dict):
        raise SettingsError(
            f"{prefix}: must be a mapping with rules, maintenance_windows, silenced"
        )
    unknown = _unknown_key(raw)
    if unknown:
        raise SettingsError(f"{prefix}: {unknown}")
    try:
        return PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"{prefix}: {_first_error(exc)}") from None
