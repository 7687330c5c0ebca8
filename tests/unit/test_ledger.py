"""The action ledger: a recorded step is never run twice; learn counts outcomes."""

from __future__ import annotations

from devops_agent.config import load_settings
from devops_agent.memory.ledger import StepEntry
from devops_agent.memory.store import Store
from devops_agent.policy import PolicyFacts, StepVerdict


def _entry(step: int = 0, attempt: int = 1, target: str = "web", key: str = "container:web"):
    return StepEntry("run", attempt, step, "restart_service", target, key, {"target": target})


def _run_it(_facts: PolicyFacts) -> StepVerdict:
    return StepVerdict("run")


async def test_a_step_is_recorded_once(tmp_path) -> None:
    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    settings = load_settings()
    try:
        first = await store.begin_step(_entry(), None, settings, _run_it)
        assert first.earlier is None and first.verdict and first.verdict.kind == "run"
        again = await store.begin_step(_entry(), None, settings, _run_it)
        assert again.earlier is not None and again.earlier.status == "started"
        await store.finish_step("run", 1, 0, "succeeded", "restarted web")
        done = await store.begin_step(_entry(), None, settings, _run_it)
        assert done.earlier is not None and done.earlier.status == "succeeded"
        assert (await store.begin_step(_entry(attempt=2), None, settings, _run_it)).earlier is None
        assert [e.attempt for e in await store.ledger("run")] == [1, 2]
    finally:
        await store.close()


async def test_limits_count_a_target_by_its_identity_not_its_name(tmp_path) -> None:
    """Two names for one container (its Compose service and its container name) are one
    target: the facts the policy judges a step by count both."""
    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    settings = load_settings()
    seen: list[PolicyFacts] = []

    def judge(facts: PolicyFacts) -> StepVerdict:
        seen.append(facts)
        return StepVerdict("run")

    try:
        await store.begin_step(_entry(0, target="db", key="compose:shop/db"), None, settings, judge)
        await store.begin_step(
            _entry(1, target="shop-db-1", key="compose:shop/db"), None, settings, judge
        )
        assert seen[-1].of("shop-db-1").actions_last_hour == 1
        assert seen[-1].run_target_keys == {"compose:shop/db"}
        facts = await store.policy_facts("other", {"db": "compose:shop/db"}, settings)
        assert facts.of("db").actions_last_hour == 2 and facts.total_last_hour == 2
    finally:
        await store.close()


async def test_learn_counts_successes_and_failures(tmp_path) -> None:
    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    actions = [{"operation": "restart_service", "status": "succeeded"}]
    common = {
        "service": "web",
        "category": "crash",
        "root_cause": "x",
        "confidence": 0.9,
        "evidence": [],
        "attempts": 1,
    }
    try:
        await store.record_incident(run_id="a", outcome="resolved", actions=actions, **common)
        await store.record_incident(
            run_id="a", outcome="resolved", actions=actions, **common
        )  # idempotent
        await store.record_incident(run_id="b", outcome="escalated", actions=actions, **common)
        (track,) = (await store.history("web")).values()
        assert (track.held, track.failed, track.last_held) == (1, 1, False)
        assert list(await store.history("web")) == [("crash", "restart_service")]
        assert [i.run_id for i in await store.incidents("web")] == ["a", "b"]
    finally:
        await store.close()
