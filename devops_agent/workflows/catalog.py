"""The catalog: the built-in workflows (devops_agent/workflows/builtin/*.yaml) and the
operator's own (WORKFLOWS_DIR/*.yaml). A malformed file stops the start with one line naming
the file and the field (a SettingsError, exit 2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from devops_agent.config import SettingsError
from devops_agent.workflows.model import Workflow

BUILTIN = Path(__file__).resolve().parent / "builtin"


def _load(path: Path, source: str) -> Workflow:
    where = f"invalid workflow {path}"
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(f"{where}: not YAML: {first}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: must be a mapping with id, when, phases")
    try:
        return Workflow.model_validate({**raw, "source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        at = ".".join(str(p) for p in err["loc"]) or "workflow"
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        raise SettingsError(f"{where}: {at}: {message}") from None


@dataclass
class Catalog:
    workflows: list[Workflow] = field(default_factory=list)

    def get(self, workflow_id: str) -> Workflow | None:
        return next((w for w in self.workflows if w.id == workflow_id), None)


def load_catalog(directory: Path | None = None) -> Catalog:
    """The built-in workflows, and the operator's from `directory` (WORKFLOWS_DIR). An
    operator's workflow with a built-in's id replaces it."""
    found = {w.id: w for w in (_load(p, "builtin") for p in sorted(BUILTIN.glob("*.yaml")))}
    if directory is not None:
        if not directory.is_dir():
            raise SettingsError(f"invalid setting WORKFLOWS_DIR: {directory} is not a directory")
        for path in sorted(directory.glob("*.y*ml")):
            workflow = _load(path, str(path))
            found[workflow.id] = workflow
    return Catalog(list(found.values()))
