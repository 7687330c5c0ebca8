"""Remediation workflows as data (issue 14.6): the rules' plans are built-in workflows, and
WORKFLOWS_DIR adds the operator's own. `model` says what a workflow is, `catalog` loads them,
`choose` picks one for a diagnosis and turns a phase into steps."""

from devops_agent.workflows.catalog import Catalog, load_catalog
from devops_agent.workflows.choose import Situation, choose, steps_of
from devops_agent.workflows.model import Phase, Workflow

__all__ = ["Catalog", "Phase", "Situation", "Workflow", "choose", "load_catalog", "steps_of"]
