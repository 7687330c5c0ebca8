"""The policy verdicts for SAFETY_MODE, AUTO_APPROVE_MAX_RISK and CONFIDENCE_THRESHOLD."""

from __future__ import annotations

from devops_agent.config import load_settings
from devops_agent.policy import decide
from devops_agent.state import Plan, PlanStep


def _plan(op: str, confidence: float = 0.9, **params: object) -> Plan:
    step = PlanStep(operation=op, target="web", params=params)
    return Plan(action="remediate", steps=[step], confidence=confidence)


def test_safety_mode_asks_for_every_mutating_step() -> None:
    s = load_settings(safety_mode=True, auto_approve_max_risk="high")
    assert decide(_plan("restart_service"), s).decision == "approval"
    assert decide(_plan("health_check"), s).decision == "auto"


def test_risk_and_confidence_gate_autonomy() -> None:
    s = load_settings(safety_mode=False)  # AUTO_APPROVE_MAX_RISK=low by default
    assert decide(_plan("restart_service"), s).decision == "approval"
    s = load_settings(safety_mode=False, auto_approve_max_risk="medium")
    assert decide(_plan("restart_service"), s).decision == "auto"
    low = decide(_plan("restart_service", confidence=0.5), s)
    assert low.decision == "approval" and "CONFIDENCE_THRESHOLD" in low.why


def test_execute_command_always_needs_a_person_and_unknown_ops_are_refused() -> None:
    s = load_settings(
        safety_mode=False, auto_approve_max_risk="high", execute_command_allowlist="nginx -s reload"
    )
    allowed = decide(_plan("execute_command", argv=["nginx", "-s", "reload"]), s)
    assert allowed.decision == "approval" and allowed.reason == "policy_approval"
    # The allowlist is the policy's now (one home), so a command off it is refused when planned,
    # not only when the backend is asked to run it.
    other = decide(_plan("execute_command", argv=["rm", "-rf", "/"]), s)
    assert other.decision == "refuse" and other.reason == "not_allowlisted"
    assert decide(_plan("drop_database"), s).decision == "refuse"


def test_the_ladder_lifts_only_what_it_promoted_never_above_medium_or_in_safety_mode() -> None:
    from devops_agent.policy import PolicyFacts

    facts = PolicyFacts(promoted={("web", "restart_service"), ("web", "execute_command")})
    on = load_settings(
        safety_mode=False,
        autonomy_ladder=True,
        execute_command_allowlist="nginx -s reload",
    )
    assert decide(_plan("restart_service"), on, facts=facts).decision == "auto"
    assert decide(_plan("restart_service"), on).reason == "risk_above_auto"  # not promoted
    execute = _plan("execute_command", argv=["nginx", "-s", "reload"])
    assert decide(execute, on, facts=facts).decision == "approval"  # never execute_command
    off = load_settings(safety_mode=False, autonomy_ladder=False)
    assert decide(_plan("restart_service"), off, facts=facts).reason == "risk_above_auto"
    safe = load_settings(safety_mode=True, autonomy_ladder=True)
    assert decide(_plan("restart_service"), safe, facts=facts).reason == "safety_mode"
