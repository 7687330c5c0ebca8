"""The action ledger: a recorded step is never run twice; learn counts outcomes."""

from __future__ import annotations

from devops_agent.memory.store import Store


async def test_a_step_is_recorded_once(tmp_path) -> None:
    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    try:
        first = await store.begin_step("run", 1, 0, "restart_service", "web", {"target": "web"})
        assert first is None
        again = await store.begin_step("run", 1, 0, "restart_service", "web", {"target": "web"})
        assert again is not None and again.status == "started"
        await store.finish_step("run", 1, 0, "succeeded", "restarted web")
        done = await store.begin_step("run", 1, 0, "restart_service", "web", {"target": "web"})
        assert done is not None and done.status == "succeeded"
        assert await store.begin_step("run", 2, 0, "restart_service", "web", {}) is None
        assert [e.attempt for e in await store.ledger("run")] == [1, 2]
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
        assert await store.history("web") == {("crash", "restart_service"): (1, 1)}
        assert [i.run_id for i in await store.incidents("web")] == ["a", "b"]
    finally:
        await store.close()
