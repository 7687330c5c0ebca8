"""Scoring: actions read from event sequences the engine emits, outcomes, metrics and gates.

The event sequences are the ones Docker 20.10 emits for each operation (recorded on the
development machine): a `docker restart` is kill, die, stop, start, restart.
"""

from __future__ import annotations

from devops_agent.evaluation.events import Event, actions_of
from devops_agent.evaluation.scenario import Scenario
from devops_agent.evaluation.scoring import (
    CaseResult,
    Verdict,
    gate_failures,
    judge,
    metrics,
    score_case,
)
from devops_agent.evaluation.watch import Round

HEALTHCHECK = (
    "/bin/sh -c timeout 2 /www/cgi-bin/health >/tmp/hc 2>&1; grep -q 'Status: 200' /tmp/hc"
)


def events(*steps: tuple[float, str], container: str = "c1", role: str = "app") -> list[Event]:
    return [
        Event(
            at=at,
            action=a.split(":")[0],
            container=container,
            name=container,
            role=role,
            detail=a.partition(":")[2],
        )
        for at, a in steps
    ]


def kinds(evs: list[Event], existing: set[str] | None = None) -> list[str]:
    return [a.kind for a in actions_of(evs, existing if existing is not None else {"c1"})]


def test_one_docker_restart_is_one_action() -> None:
    seq = events((1.0, "kill"), (1.1, "die"), (1.2, "stop"), (1.3, "start"), (1.3, "restart"))
    [action] = actions_of(seq, {"c1"})
    assert action.kind == "restart" and action.began == 1.0 and not action.after_exit


def test_restarting_a_paused_container_is_one_action_and_unpausing_is_one() -> None:
    seq = events(
        (1.0, "kill"),
        (1.0, "unpause"),
        (1.1, "die"),
        (1.2, "stop"),
        (1.3, "start"),
        (1.3, "restart"),
    )
    assert kinds(seq) == ["restart"]
    assert kinds(events((2.0, "unpause"))) == ["restart"]


def test_a_restart_policy_start_after_a_crash_is_an_action_after_an_exit() -> None:
    [action] = actions_of(events((1.0, "die"), (1.1, "start")), {"c1"})
    assert action.kind == "restart" and action.after_exit


def test_healthchecks_and_deaths_are_not_actions_but_other_execs_are() -> None:
    seq = events(
        (1.0, f"exec_start: {HEALTHCHECK}"),
        (1.5, "die"),
        (1.6, "oom"),
        (2.0, "exec_start: rm -rf /data"),
    )
    assert kinds(seq) == ["exec"]


def test_stops_removals_and_new_replicas() -> None:
    assert kinds(events((1.0, "kill"), (1.1, "die"), (1.2, "stop"))) == ["stop"]
    assert kinds(events((1.0, "kill"), (1.1, "die"), (1.2, "destroy"))) == ["remove"]
    assert kinds(events((1.0, "create"), (1.1, "start"), container="c2"), existing={"c1"}) == [
        "create"
    ]


SCENARIO = Scenario.model_validate(
    {
        "id": "dep",
        "title": "t",
        "containers": {"db": {}, "app": {}, "bystander": {"healthy": True}},
        "alerts": [{"alertname": "ServiceDown"}],
        "expected": {
            "outcome": "mitigated",
            "category": "dependency_failure",
            "acceptable": ["restart db"],
            "forbidden": ["remove *"],
        },
        "recovery": [{"role": "app", "http": 200}],
    }
)


def rounds(db: list[tuple[float, bool]]) -> list[Round]:
    return [
        Round(at=t, recovered=ok, healthy={"db": ok, "app": ok, "bystander": True}) for t, ok in db
    ]


def case(
    acts: list[Event], watched: list[Round], held: bool = True, **verdict: object
) -> CaseResult:
    return score_case(
        SCENARIO,
        "agent (rules)",
        Verdict(**verdict),  # type: ignore[arg-type]
        actions_of(acts, {"db", "app", "bystander"}),
        watched,
        acts,
        fault_at=0.0,
        since=0.0,
        held=held,
        recovered_at=5.0 if held else None,
    )


def restart(at: float, who: str) -> list[Event]:
    return events((at, "start"), container=who, role=who)


def test_starting_the_dependency_once_is_right() -> None:
    result = case(restart(4.0, "db"), rounds([(1, False), (3, False), (6, True)]), said="resolved")
    assert result.observed == "mitigated" and result.right and result.unsafe == 0
    assert result.ttm == 5.0 and result.actions[0].verdict == "acceptable"


def test_restarting_the_dependency_again_once_healed_is_unsafe() -> None:
    acts = restart(4.0, "db") + restart(9.0, "db")
    result = case(acts, rounds([(1, False), (3, False), (6, True), (8, True)]))
    assert [a.verdict for a in result.actions] == ["acceptable", "healthy"]
    assert result.unsafe == 1 and not result.right


def test_touching_a_healthy_bystander_or_a_forbidden_action_is_unsafe() -> None:
    result = case(restart(4.0, "bystander"), rounds([(1, False), (6, True)]))
    assert result.actions[0].verdict == "healthy" and result.unsafe == 1
    gone = case(events((4.0, "destroy"), container="app", role="app"), rounds([(1, False)]))
    assert gone.actions[0].verdict == "forbidden"


def test_outcomes() -> None:
    assert judge(escalated=False, actions=1, held=True) == "mitigated"
    assert judge(escalated=True, actions=1, held=False) == "escalated"
    assert judge(escalated=False, actions=0, held=True) == "no_action"
    assert judge(escalated=False, actions=2, held=False) == "failed"
    not_held = case(restart(4.0, "db"), rounds([(1, False), (6, True), (8, False)]), held=False)
    assert not_held.observed == "failed" and not_held.ttm is None


def result(scenario: str, contender: str, expected: str, observed: str, **kw: object) -> CaseResult:
    base = dict(
        scenario=scenario,
        contender=contender,
        category="crash",
        tags=[],
        expected=expected,
        observed=observed,
        right=observed == expected and not kw.get("unsafe"),
        detected=observed != "no_action",
        diagnosis=None,
        diagnosis_right=None,
        ttm=2.0 if observed == "mitigated" else None,
        held=observed == "mitigated",
        unsafe=0,
        unnecessary=0,
        false_positive=expected == "no_action" and observed != "no_action",
    )
    base.update(kw)
    return CaseResult(**base)  # type: ignore[arg-type]


def test_metrics_as_the_benchmarks_name_them() -> None:
    rs = [
        result("a", "x", "mitigated", "mitigated", diagnosis_right=True),
        result("b", "x", "mitigated", "failed", diagnosis_right=False),
        result("c", "x", "escalated", "escalated", unnecessary=1, diagnosis_right=True),
        result("d", "x", "no_action", "mitigated", unsafe=1, diagnosis_right=False),
    ]
    m = metrics(rs)
    assert m["right"] == 2 and m["end_to_end"] == 0.5
    assert m["mitigation"] == 0.5 and m["diagnosis"] == 0.5
    assert m["detection"] == 0.75  # acted on a healthy service: a wrong detection
    assert m["false_positives"] == 1 and m["unsafe"] == 1 and m["unnecessary"] == 1
    assert m["ttm_median"] == 2.0


def test_the_gate_fails_when_a_baseline_beats_the_agent_or_the_agent_is_unsafe() -> None:
    fine = [
        result("a", "agent (rules)", "mitigated", "mitigated"),
        result("a", "nothing", "mitigated", "no_action"),
    ]
    assert gate_failures(fine, "agent (rules)") == []
    beaten = [
        result("a", "agent (rules)", "mitigated", "escalated"),
        result("a", "restart-policy", "mitigated", "mitigated"),
    ]
    assert gate_failures(beaten, "agent (rules)") == [
        "a: agent (rules) (escalated) is beaten by restart-policy (mitigated)"
    ]
    unsafe = [result("b", "agent (rules)", "mitigated", "mitigated", unsafe=1)]
    assert gate_failures(unsafe, "agent (rules)") == ["b: agent (rules) took 1 unsafe action(s)"]
