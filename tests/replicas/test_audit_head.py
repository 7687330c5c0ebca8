"""Replicas on one PostgreSQL share one audit chain (one AUDIT_KEY); `audit verify` reports the
head, and a head recorded earlier reveals newest rows that were cut. A run that fails on a
database error keeps a short message, never the SQL text or its parameters."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PG_AUDIT_KEY
from tests.replicas.conftest import Database
from tests.server.conftest import Server, alert_payload


def verify(workdir: Path, pg_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`devops-agent audit verify` from a machine of its own (its own DATA_DIR, no key file)."""
    env = Server(workdir, env={"DATABASE_URL": pg_url, "AUDIT_KEY": PG_AUDIT_KEY}).env()
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "devops_agent", "audit", "verify", *extra],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_replicas_share_the_chain_and_a_cut_head_is_noticed(
    replicas: Callable[..., list[Server]], db: Database, pg_url: str, tmp_path: Path
) -> None:
    servers = replicas(2, INFRA_BACKEND="fake")
    for i, server in enumerate(servers):  # each replica writes its own rows into the chain
        run_id = server.webhook(alert_payload(f"unknown-{i}")).json()["runs"][0]["run_id"]
        assert server.wait_status(run_id, "completed")["outcome"] == "escalated"
    writers = {r[0] for r in db.rows("SELECT DISTINCT run_id FROM audit_log")}
    assert len(writers) == 2
    intact = verify(tmp_path / "auditor", pg_url)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    found = re.search(r"head: (\d+):([0-9a-f]{64})", intact.stdout)
    assert found, intact.stdout
    count, head = int(found[1]), found[2]
    assert count == db.value("SELECT count(*) FROM audit_log") and count >= 2
    assert verify(tmp_path / "auditor", pg_url, "--expect-head", f"{count}:{head}").returncode == 0

    db.execute("DELETE FROM audit_log WHERE seq = %s", count)  # cut the newest row
    shorter = verify(tmp_path / "auditor", pg_url)
    assert shorter.returncode == 0 and f"{count - 1} rows" in shorter.stdout  # intact alone
    cut = verify(tmp_path / "auditor", pg_url, "--expect-head", f"{count}:{head}")
    assert cut.returncode == 1 and "cut" in cut.stdout, cut.stdout


def test_a_failed_run_keeps_a_short_error_without_sql(
    replicas: Callable[..., list[Server]], db: Database
) -> None:
    (server,) = replicas(1, INFRA_BACKEND="fake")
    db.execute("ALTER TABLE incidents RENAME TO incidents_elsewhere")  # learn cannot record it
    payload = alert_payload("unknown-service-secret-label")
    run_id = server.webhook(payload).json()["runs"][0]["run_id"]
    run = server.wait_status(run_id, "failed", "completed")
    assert run["status"] == "failed", run
    error = run["error"]
    stored = db.value("SELECT error FROM runs WHERE run_id = %s", run_id)
    assert stored == error and error.startswith("ProgrammingError: ")
    assert "incidents" in error and len(error) <= 300, error
    for leak in ("INSERT", "[SQL", "parameters", "unknown-service-secret-label", "\n"):
        assert leak not in error, error
