"""Remediation workflows as data (issue 14.6): the catalog, its strict loader, the choice, the
phases; on the real graph with the fake backend (tests/server/test_workflows.py: real Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_agent.config import SettingsError
from devops_agent.runner import open_agent
from devops_agent.tools.fake import FakeService
from devops_agent.workflows import load_catalog
from tests.support.factories import alert, drive, fake_context

AUTONOMOUS = {"safety_mode": False, "auto_approve_max_risk": "medium"}
OWN_CRASH = """\
id: careful-crash
description: restart with a longer stop timeout, for services that flush on SIGTERM
when: {categories: [crash], labels: {team: payments}}
phases:
  - name: restart
    steps:
      - {operation: restart_service, params: {timeout: 30}, rationale: "payments flush on stop"}
"""


def test_the_built_in_catalog_covers_the_rules_plans() -> None:
    ids = {w.id for w in load_catalog().workflows}
    assert {"crash", "hang", "memory-exhaustion", "dependency-down", "overload"} <= ids
    assert all(w.source == "builtin" for w in load_catalog().workflows)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "id: x\nwhen: {categories: [crash]}\nphases: [{name: a, steps: [{operation: restart_service}]}]\nonfailure: next\n",
            r"x\.yaml: onfailure: unknown key",
        ),
        (
            "id: x\nwhen: {categories: [crash]}\nphases:\n  - {name: a, steps: [{operation: reboot}]}\n",
            r"phases\.0\.steps\.0\.operation: 'reboot' is not an operation",
        ),
        (
            "id: x\nwhen: {categories: [crash]}\nphases:\n  - {name: a, steps: [{operation: restart_service, target: '{host}'}]}\n",
            r"unknown template name \{host\}",
        ),
        (
            "id: x\nwhen: {categories: [crsh]}\nphases: []\n",
            r"when\.categories: 'crsh' is not a diagnosis category",
        ),
        (
            "id: x\nwhen: {categories: [crash]}\npreconditions: [sunny]\nphases: []\n",
            r"'sunny' is not a precondition",
        ),
        ("- not a mapping\n", r"must be a mapping"),
    ],
)
def test_a_malformed_workflow_file_is_one_line_naming_file_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "x.yaml").write_text(text)
    with pytest.raises(SettingsError, match=expected) as caught:
        load_catalog(tmp_path)
    assert "\n" not in str(caught.value) and "x.yaml" in str(caught.value)


async def test_an_operators_workflow_is_chosen_over_the_built_in_one(tmp_path: Path) -> None:
    own = tmp_path / "workflows"
    own.mkdir()
    (own / "careful.yaml").write_text(OWN_CRASH)
    web = FakeService("web", status="exited", exit_code=2, labels={"team": "payments"})
    ctx = fake_context(tmp_path, web, workflows_dir=own, **AUTONOMOUS)
    ctx.reasoner = type(ctx.reasoner)(load_catalog(own))  # as AgentContext.from_settings does
    async with open_agent(ctx) as agent:
        await drive(agent, "r1", [alert("web")])
        state = await agent.state("r1")
    assert state["plan"]["workflow"] == "careful-crash" and state["outcome"] == "resolved"
    assert state["plan"]["steps"][0]["params"]["timeout"] == 30


async def test_the_dependency_workflow_goes_to_its_second_phase(tmp_path: Path) -> None:
    """Phase 1 starts the dependency; the caller stays down, so phase 2 restarts the caller."""
    db = FakeService("db", status="exited", exit_code=0)
    web = FakeService("web", status="exited", exit_code=1, labels={"devops-agent.depends-on": "db"})
    async with open_agent(fake_context(tmp_path, db, web, **AUTONOMOUS)) as agent:
        await drive(agent, "r1", [alert("web")])
        state = await agent.state("r1")
    steps = [(a["attempt"], a["target"]) for a in state["actions"]]
    assert steps == [(1, "db"), (2, "web")] and state["outcome"] == "resolved", state["actions"]
    assert state["plan"]["workflow"] == "dependency-down" and state["plan"]["phase"] == 1
