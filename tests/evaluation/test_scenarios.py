"""The scenario loader: the shipped suite, and files it must refuse (with file and field)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devops_agent.evaluation.scenario import (
    BUILTIN_DIR,
    CATEGORIES,
    ScenarioError,
    load_dir,
    load_file,
    select,
)

MINIMAL = {
    "id": "tiny",
    "title": "a crash",
    "containers": {"app": {}},
    "fault": [{"flag": {"role": "app", "flag": "crash"}}],
    "alerts": [{"alertname": "ServiceDown", "labels": {"service": "${app}"}}],
    "expected": {"outcome": "mitigated", "category": "crash", "acceptable": ["restart app"]},
    "recovery": [{"role": "app", "http": 200}],
}


def write(tmp_path: Path, data: dict, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def with_change(change: dict) -> dict:
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = data
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value
    return data


def test_the_shipped_suite_covers_every_category_and_the_adversarial_cases() -> None:
    suite = load_dir()
    assert len(suite) >= 20
    assert {s.category for s in suite} == set(CATEGORIES)
    ids = {s.id for s in suite}
    for wanted in (
        "paused",
        "misleading-alert",
        "red-herring-logs",
        "fix-does-not-hold",
        "caller-and-dependency",
        "wrong-env-after-redeploy",
        "slow-but-healthy",
        "dependency-503",
        "injection-annotation",
        "injection-log",
        "unknown-target",
        "no-fault",
    ):
        assert wanted in ids
    outcomes = {s.id: s.expected.outcome for s in suite}
    for escalate in ("config-error", "disk-full", "crash-loop", "unknown-target"):
        assert outcomes[escalate] == "escalated"
    assert outcomes["no-fault"] == "no_action"
    assert select(suite, None, quick=True), "the quick subset is empty"


def test_the_scenarios_ship_inside_the_package() -> None:
    assert BUILTIN_DIR.is_dir() and BUILTIN_DIR.parent.name == "evaluation"


def test_a_minimal_scenario_loads(tmp_path: Path) -> None:
    scenario = load_file(write(tmp_path, MINIMAL))
    assert (
        scenario.id == "tiny" and scenario.hold == 10 and scenario.expected.categories == ["crash"]
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "red"}, "colour: unknown field"),
        ({"containers.app.colour": "red"}, "containers.app.colour: unknown field"),
        ({"expected.outcome": "fixed"}, "expected.outcome"),
        ({"expected.category": "flaky"}, "expected.category"),
        ({"expected.forbidden": ["restart db"]}, "no container role named 'db'"),
        ({"expected.acceptable": ["reboot app"]}, "expected.acceptable[0]"),
        ({"fault": [{"pause": "app", "stop": "app"}]}, "exactly one of"),
        ({"fault": [{"flag": {"role": "app", "flag": "explode"}}]}, "fault.0.flag.flag"),
        ({"recovery": [{"role": "app"}]}, "a condition needs one of"),
        ({"recovery": []}, "recovery"),
        ({"hold": -1}, "hold"),
        ({"containers.app.restart_policy": "sometimes"}, "containers.app.restart_policy"),
    ],
)
def test_a_wrong_scenario_is_refused_naming_file_and_field(
    tmp_path: Path, change: dict, field: str
) -> None:
    path = write(tmp_path, with_change(change))
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_the_id_must_be_the_file_name(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="must be the file's name"):
        load_file(write(tmp_path, MINIMAL, name="other"))


def test_only_names_known_scenarios() -> None:
    with pytest.raises(ScenarioError, match="no scenario named nope"):
        select(load_dir(), ["crash", "nope"], quick=False)
    assert [s.id for s in select(load_dir(), ["no-fault", "crash"], quick=False)] == [
        "no-fault",
        "crash",
    ]


def test_the_command_refuses_a_bad_scenario_directory_with_one_line(tmp_path: Path) -> None:
    write(tmp_path, with_change({"containers.app.colour": "red"}))
    done = subprocess.run(
        [sys.executable, "-m", "devops_agent", "eval", "--scenarios", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert "tiny.yaml: containers.app.colour: unknown field" in done.stderr
