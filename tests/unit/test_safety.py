"""Issue 8 in the core: policy file, rate limits, circuit breaker, kill switch, dry run,
rollback and the audit chain, on the fake backend and a real SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from typing import Any

import pytest

import devops_agent.memory.audit as audit_module
from devops_agent.config import SettingsError, load_settings
from devops_agent.context import AgentContext
from devops_agent.memory.audit import AuditLog
from devops_agent.memory.store import Store
from devops_agent.policy import PolicyDocument, PolicyFacts, TargetFacts, decide, load_policy
from devops_agent.runner import open_agent
from devops_agent.state import Alert, Plan, PlanStep
from devops_agent.tools.fake import FakeService
from tests.support.factories import fake_context

AUTONOMOUS = {"safety_mode": False, "auto_approve_max_risk": "medium", "validate_timeout": 0.2}


def _ctx(tmp_path, *services: FakeService, **settings: Any) -> AgentContext:
    return fake_context(tmp_path, *services, **{**AUTONOMOUS, **settings})


async def _run(ctx: AgentContext, run_id: str, service: str) -> dict[str, Any]:
    async with open_agent(ctx) as agent:
        alert = Alert(alertname="ServiceDown", fingerprint=run_id, labels={"service": service})
        nodes = [n async for n, _ in agent.stream(run_id, [alert])]
        state = await agent.state(run_id)
    return {**state, "nodes": nodes}


def _restart(target: str = "web") -> Plan:
    return Plan(
        action="remediate",
        steps=[PlanStep(operation="restart_service", target=target)],
        confidence=0.9,
    )


def test_policy_file_rules_silences_and_windows(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "rules:\n"
        "  - {operation: restart_service, target: 'db-*', verdict: forbid}\n"
        "  - {operation: '*', target: 'pay*', verdict: approval}\n"
        "maintenance_windows:\n"
        "  - {services: [shop], start: '2000-01-01T00:00:00Z', end: '2999-01-01T00:00:00Z'}\n"
        "silenced: [legacy-*]\n"
    )
    doc = load_policy(path)
    s = load_settings(**AUTONOMOUS)
    assert decide(_restart("db-main"), s, doc).decision == "refuse"
    assert "forbidden by the policy file" in decide(_restart("db-main"), s, doc).why
    assert decide(_restart("payments"), s, doc).decision == "approval"
    assert "maintenance window" in decide(_restart("shop"), s, doc).why
    assert "silenced" in decide(_restart("legacy-batch"), s, doc).why
    assert decide(_restart("web"), s, doc).decision == "auto"
    assert decide(_restart("web"), s, doc).policy == f"policy {doc.digest}"


def test_bad_policy_file_is_one_clear_error(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rules:\n  - {operation: restart_service, verdict: maybe}\n")
    with pytest.raises(SettingsError, match=r"POLICY_FILE: .*rules\.0\.verdict"):
        load_policy(path)


def _facts(web: int = 0, **kwargs: Any) -> PolicyFacts:
    return PolicyFacts(
        targets={"web": TargetFacts("container:web", actions_last_hour=web)}, **kwargs
    )


def test_rate_limits_targets_and_kill_switch() -> None:
    s = load_settings(**AUTONOMOUS)
    limited = decide(_restart(), s, facts=_facts(3))
    assert limited.decision == "refuse" and limited.reason == "rate_limit_service"
    assert decide(_restart(), s, facts=_facts(2)).decision == "auto"
    busy = decide(_restart(), s, facts=_facts(0, total_last_hour=20))
    assert "MAX_ACTIONS_PER_HOUR=20" in busy.why and busy.reason == "rate_limit_global"
    wide = Plan(
        action="remediate",
        steps=[PlanStep(operation="restart_service", target=f"s{i}") for i in range(4)],
    )
    assert "MAX_TARGETS_PER_RUN=3" in decide(wide, s, PolicyDocument()).why
    assert decide(wide, s, PolicyDocument()).reason == "max_targets"
    paused = decide(_restart(), s, facts=_facts(actions_paused=True))
    assert paused.decision == "approval" and "kill switch" in paused.why
    assert paused.reason == "kill_switch"


async def test_rate_limit_refusal_is_recorded_on_a_run(tmp_path) -> None:
    ctx = _ctx(
        tmp_path,
        FakeService("web", status="exited", exit_code=2),
        max_actions_per_service_per_hour=0,
    )
    state = await _run(ctx, "r1", "web")
    assert (
        state["outcome"] == "escalated"
        and "MAX_ACTIONS_PER_SERVICE_PER_HOUR=0" in state["escalation"]
    )
    assert ctx.registry.backend.services["web"].restarts == 0  # type: ignore[attr-defined]


async def test_kill_switch_holds_actions_for_approval(tmp_path) -> None:
    ctx = _ctx(tmp_path, FakeService("web", status="exited", exit_code=2))
    await ctx.store.set_control("actions_paused", "true", by="ops")
    state = await _run(ctx, "r1", "web")
    assert state["nodes"][-1] == "__interrupt__" and "kill switch" in state["plan"]["why"]
    assert ctx.registry.backend.services["web"].restarts == 0  # type: ignore[attr-defined]


async def test_circuit_breaker_opens_after_repeated_failed_remediations(tmp_path) -> None:
    # Two incidents of different kinds in a row where acting did not heal it; the third is of a
    # third kind (so what was learned of the first two kinds would not stop it): the breaker
    # stops it.
    web = FakeService("web", status="paused", sticky=True)
    ctx = _ctx(
        tmp_path, web, breaker_failures=2, max_actions_per_service_per_hour=100, max_attempts=1
    )
    assert (await _run(ctx, "r1", "web"))["diagnosis"]["category"] == "hang"
    web.status, web.exit_code = "exited", 2
    second = await _run(ctx, "r2", "web")
    assert second["diagnosis"]["category"] == "crash" and second["outcome"] == "escalated"
    assert web.restarts == 2
    web.status, web.oom_killed = "exited", True
    third = await _run(ctx, "r3", "web")
    assert "circuit breaker open for web" in third["escalation"] and web.restarts == 2


async def test_dry_run_records_what_it_would_do(tmp_path) -> None:
    web = FakeService("web", status="exited", exit_code=2)
    state = await _run(_ctx(tmp_path, web, dry_run=True), "r1", "web")
    assert [a["status"] for a in state["actions"]] == ["dry_run"]
    assert "would run restart_service" in state["actions"][0]["output"]
    assert (
        state["outcome"] == "escalated" and "DRY_RUN" in state["escalation"] and web.restarts == 0
    )


async def test_failed_scaling_is_rolled_back(tmp_path) -> None:
    """The cpu-saturation workflow: one replica more; when that does not help, scale back and
    escalate (its phase's `on_failure: rollback`), not a second replica."""
    api = FakeService("api", compose=True, cpu_of_limit_percent=97, probe_status=503)
    state = await _run(_ctx(tmp_path, api), "r1", "api")
    moves = [
        (a["operation"], a["params"].get("replicas"), a["status"], a["rollback_of"])
        for a in state["actions"]
    ]
    assert moves == [
        ("scale_service", 2, "succeeded", None),
        ("scale_service", 1, "succeeded", 0),
    ]
    assert (
        api.replicas == 1
        and "rolled back" in state["escalation"]
        and state["outcome"] == "escalated"
    )
    assert state["nodes"][-3:] == ["rollback", "escalate", "learn"]


async def test_scale_step_is_bounded(tmp_path) -> None:
    api = FakeService("api", compose=True, cpu_of_limit_percent=97)
    ctx = _ctx(tmp_path, api, max_scale_step=1)
    from devops_agent.nodes.execute import run_step

    step = PlanStep(operation="scale_service", target="api", params={"replicas": 5})
    record = (await run_step(ctx, "r", 1, 0, step, by_person=True)).record
    assert record is not None and record.status == "refused" and api.replicas == 1
    assert "MAX_SCALE_STEP=1" in record.output and record.reason == "max_scale_step"
    await ctx.store.close()


async def test_audit_chain_catches_an_edited_and_a_deleted_row(tmp_path) -> None:
    ctx = _ctx(tmp_path, FakeService("web", status="exited", exit_code=2))
    state = await _run(ctx, "r1", "web")
    assert state["outcome"] == "resolved"
    kinds = [r.kind for r in await ctx.audit.rows(run_id="r1")]
    assert kinds == ["diagnosis", "plan", "approval", "action", "outcome"]
    assert (tmp_path / "audit-key").stat().st_mode & 0o777 == 0o600
    env = {
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/agent.db",
    }

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devops_agent", "audit", "verify"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )

    ok = verify()
    assert ok.returncode == 0 and "intact: 5 rows" in ok.stdout
    with sqlite3.connect(tmp_path / "agent.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE kind = 'approval'")
    edited = verify()
    assert edited.returncode == 1 and "row 3 was changed" in edited.stdout
    with sqlite3.connect(tmp_path / "agent.db") as db:
        db.execute("UPDATE audit_log SET actor = 'policy' WHERE kind = 'approval'")
    assert verify().returncode == 0
    with sqlite3.connect(tmp_path / "agent.db") as db:
        db.execute("DELETE FROM audit_log WHERE seq = 2")
    deleted = verify()
    assert deleted.returncode == 1 and "row 2 is missing" in deleted.stdout


async def test_audit_verify_walks_the_chain_in_chunks(tmp_path, monkeypatch) -> None:
    """verify() checks a chunk of rows per trip to the store's thread (the runs' writes share
    that thread); a chain longer than a chunk, and a change past the first chunk, are found."""
    monkeypatch.setattr(audit_module, "VERIFY_CHUNK", 2)
    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    log = AuditLog(store, b"k" * 32)
    try:
        for i in range(5):
            await log.append(f"run-{i}", "plan", "rules", {"i": i})
        intact = await log.verify()
        assert (intact.ok, intact.rows) == (True, 5)
        with sqlite3.connect(tmp_path / "a.db") as db:
            db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
        edited = await log.verify()
        assert not edited.ok and edited.rows == 3 and "row 4 was changed" in edited.problem
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "silence: [legacy]\n",
            r"POLICY_FILE: .*policy\.yaml: silence: unknown key \(did you mean silenced\?\)",
        ),
        (
            "rules:\n  - {operation: restart_servce, verdict: forbid}\n",
            r"rules\.0\.operation: 'restart_servce' matches no operation .*did you mean restart_service",
        ),
        (
            "rules:\n  - {operation: '*', target: web, verdict: auto}\n",
            r"rules\.0\.verdict: must be one of approval, forbid",
        ),
        (
            "rules:\n  - {operation: '*', targt: web, verdict: forbid}\n",
            r"rules\.0\.targt: unknown key \(did you mean target\?\)",
        ),
        (
            "maintenance_windows:\n  - {service: [web], start: 2026-01-01, end: 2026-01-02}\n",
            r"maintenance_windows\.0\.service: unknown key \(did you mean services\?\)",
        ),
    ],
)
def test_a_policy_file_that_does_not_say_what_it_seems_to_is_refused(
    tmp_path, text: str, expected: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=expected) as caught:
        load_policy(path)
    assert "\n" not in str(caught.value)


def test_a_forbid_rule_is_never_shadowed_by_an_earlier_rule(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "rules:\n"
        "  - {operation: '*', target: '*', verdict: approval}\n"
        "  - {operation: restart_service, target: 'db-*', verdict: forbid}\n"
    )
    verdict = decide(_restart("db-main"), load_settings(**AUTONOMOUS), load_policy(path))
    assert verdict.decision == "refuse" and verdict.reason == "policy_forbid"
