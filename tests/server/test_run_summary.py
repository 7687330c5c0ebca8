"""Runs keep their story after retention (issue 22.5): a finished run's diagnosis, plan,
approval, actions and validation are kept on its row, so the API shows it the same once its
checkpoints are gone."""

from __future__ import annotations

import sqlite3

from tests.server.conftest import Server, alert_payload
from tests.support.containers import Lab


def test_a_finished_run_reads_the_same_without_its_checkpoints(server: Server, lab: Lab) -> None:
    app = lab.crashed()
    run_id = server.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    server.wait_status(run_id, "awaiting_approval")
    assert server.resume(run_id, "approve").status_code == 202
    before = server.wait_status(run_id, "completed")
    assert before["outcome"] == "resolved" and before["diagnosis"]["category"] == "crash"
    assert [a["status"] for a in before["actions"]] == ["succeeded"] and before["validation"]

    with sqlite3.connect(server.data_dir / "agent.db") as db:
        for table in ("checkpoints", "writes"):
            db.execute(f"DELETE FROM {table} WHERE thread_id = ?", (run_id,))
    assert server.run(run_id) == before
