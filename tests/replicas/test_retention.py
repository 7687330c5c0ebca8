"""Retention: finished runs' checkpoints are deleted after CHECKPOINT_RETENTION; the run, its
alerts and its incident record stay, and the API still answers for it."""

from __future__ import annotations

from collections.abc import Callable

from tests.replicas.conftest import Database
from tests.server.conftest import Server, alert_payload

CHECKPOINT_TABLES = ("checkpoints", "checkpoint_writes", "checkpoint_blobs")


def sizes(db: Database) -> dict[str, int]:
    return {t: int(db.value(f"SELECT count(*) FROM {t}")) for t in CHECKPOINT_TABLES}


def test_finished_runs_checkpoints_are_pruned_and_their_records_stay(
    replicas: Callable[..., list[Server]], db: Database
) -> None:
    (keeper,) = replicas(1, INFRA_BACKEND="fake", CHECKPOINT_RETENTION="3600")
    run_ids = [
        keeper.webhook(alert_payload(f"old-{i}")).json()["runs"][0]["run_id"] for i in range(5)
    ]
    db.wait("SELECT count(*) FROM runs WHERE status = 'completed'", lambda n: n == 5, "completed")
    full = sizes(db)
    assert full["checkpoints"] > 0 and full["checkpoint_writes"] > 0, full
    before = keeper.run(run_ids[0])
    assert before["escalation"], before  # from the checkpoints: unknown target
    keeper.stop()

    # A replica with a short retention prunes them; a new run's checkpoints stay while it is young.
    (pruner,) = replicas(1, INFRA_BACKEND="fake", CHECKPOINT_RETENTION="2")
    db.wait(
        "SELECT count(*) FROM runs WHERE pruned_at IS NOT NULL", lambda n: n == 5, "pruned runs"
    )
    pruned = sizes(db)
    assert all(pruned[t] < full[t] for t in ("checkpoints", "checkpoint_writes")), (full, pruned)
    assert db.value("SELECT count(*) FROM checkpoints WHERE thread_id = ANY(%s)", run_ids) == 0
    assert (
        db.value("SELECT count(*) FROM checkpoint_writes WHERE thread_id = ANY(%s)", run_ids) == 0
    )
    assert db.value("SELECT count(*) FROM runs") == 5
    assert db.value("SELECT count(*) FROM incidents WHERE run_id = ANY(%s)", run_ids) == 5
    assert db.value("SELECT count(*) FROM alerts") == 5
    # The run keeps its story: shown from the summary on its row, the same as before.
    assert pruner.run(run_ids[0]) == before
