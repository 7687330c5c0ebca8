"""PostgreSQL unreachable: at start, one line and exit code 2; while running, the webhook
answers 503 (Alertmanager retries) and what it did accept is not lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import PG_AUDIT_KEY
from tests.replicas.conftest import Database
from tests.server.conftest import Server, alert_payload
from tests.support.containers import free_port


def test_unreachable_at_start_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    url = f"postgresql://agent@127.0.0.1:{free_port()}/x"
    server = Server(tmp_path, env={"DATABASE_URL": url, "AUDIT_KEY": PG_AUDIT_KEY})
    done = server.run_to_exit()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "PostgreSQL at 127.0.0.1:" in lines[0] and "unreachable" in lines[0]
    assert "DATABASE_URL" in lines[0]


def test_webhook_answers_503_while_the_database_is_unreachable_and_loses_nothing(
    replicas: Callable[..., list[Server]], db: Database, pg_url: str
) -> None:
    (server,) = replicas(1, INFRA_BACKEND="fake", RUN_LEASE_SECONDS="5")
    before = server.webhook(alert_payload("kept-before"))
    assert before.status_code == 202
    name = pg_url.rsplit("/", 1)[1]
    admin = Database(pg_url.rsplit("/", 1)[0] + "/postgres")
    admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    try:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            name,
        )
        during = alert_payload("sent-during-outage")
        answer = server.webhook(during)
        assert answer.status_code == 503, answer.text
        assert "retry" in answer.json()["detail"]
        assert server.get("/health").status_code == 200
    finally:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    # Alertmanager retries: now it is stored, and both runs finish.
    retried = server.webhook(during)
    assert retried.status_code == 202, retried.text
    db.wait(
        "SELECT count(*) FROM runs WHERE status = 'completed'", lambda n: n == 2, "both completed"
    )
    assert {r[0] for r in db.rows("SELECT service FROM runs")} == {
        "kept-before",
        "sent-during-outage",
    }
    assert db.value("SELECT count(*) FROM incidents") == 2
