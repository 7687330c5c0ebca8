"""Start-up: what `devops-agent serve` refuses, and how (one line on stderr, exit code 2, never a
traceback), and what it no longer says at INFO. Real processes, real PostgreSQL."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PG_AUDIT_KEY
from tests.server.conftest import Server, alert_payload


def refused(proc: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a refused start (asserting there is one, and exit code 2)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(lines) == 1, lines
    return lines[0]


def cli(workdir: Path, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`devops-agent ARGV` with the test servers' clean environment plus `env`."""
    server = Server(workdir, env=env)
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "devops_agent", *argv],
        cwd=workdir,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_names_every_missing_token(tmp_path: Path) -> None:
    neither = Server(tmp_path / "a", env={"ENVIRONMENT": "production", "AGENT_API_TOKEN": ""})
    neither.extra_env["WEBHOOK_TOKEN"] = ""
    line = refused(neither.run_to_exit())
    assert "AGENT_API_TOKEN and WEBHOOK_TOKEN are required" in line and "production" in line
    webhook_open = Server(tmp_path / "b", env={"ENVIRONMENT": "production", "WEBHOOK_TOKEN": ""})
    line = refused(webhook_open.run_to_exit())
    assert "WEBHOOK_TOKEN is required" in line and "AGENT_API_TOKEN" not in line
    assert not (tmp_path / "b" / "data" / "api-token").exists()


def test_commands_that_serve_no_webhook_do_not_need_its_token(tmp_path: Path) -> None:
    env = {"ENVIRONMENT": "production", "WEBHOOK_TOKEN": ""}
    verified = cli(tmp_path, "audit", "verify", env=env)
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stderr
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps(alert_payload("no-such-service-here")))
    ran = cli(tmp_path, "run-alert", str(payload), env={**env, "INFRA_BACKEND": "fake"})
    assert ran.returncode == 1 and "escalated" in ran.stdout, ran.stderr  # unknown target


def _busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"POLICY_FILE": "missing.yaml"}, ["POLICY_FILE", "missing.yaml"]),
        ({"POLICY_FILE": "broken.yaml"}, ["POLICY_FILE", "not YAML"]),
        ({"POLICY_FILE": "wrong.yaml"}, ["POLICY_FILE", "rules.0"]),
        ({"NOTIFY_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/secret"}, ["NOTIFY_WEBHOOK_URL"]),
        ({"DOCKER_HOST": "docker.sock"}, ["DOCKER_HOST", "unix://"]),
        ({"DOCKER_HOST": "tcp://127.0.0.1:99999"}, ["DOCKER_HOST", "port"]),
        ({"OPENAI_BASE_URL": "localhost:11434/v1"}, ["OPENAI_BASE_URL", "http://"]),
        ({"PROMETHEUS_URL": "http://"}, ["PROMETHEUS_URL", "no host"]),
        ({"DATABASE_URL": "sqlite+aiosqlite:////proc/no/such/dir/a.db"}, ["DATABASE_URL"]),
        ({"DATA_DIR": "/proc/no-such-dir"}, ["DATA_DIR"]),
    ],
)
def test_a_start_up_error_is_one_line_and_exit_code_2(
    tmp_path: Path, env: dict[str, str], words: list[str]
) -> None:
    (tmp_path / "broken.yaml").write_text("rules: [\n  - {operation: restart_service\n")
    (tmp_path / "wrong.yaml").write_text("rules:\n  - operation: 3\n")
    line = refused(Server(tmp_path, env=env).run_to_exit())
    assert line.startswith("error: ")
    assert all(word in line for word in words), line
    assert "secret" not in line  # a webhook URL's path is its secret: never repeated


def test_a_database_file_that_is_not_one_is_one_line(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.data_dir.mkdir(parents=True)
    (server.data_dir / "agent.db").write_bytes(b"not a database, " * 512)
    line = refused(server.run_to_exit())
    assert "agent.db" in line and "not a usable SQLite database" in line


def test_a_traceback_from_a_failed_lifespan_becomes_its_last_line() -> None:
    """The fallback for what fails after the checks (uvicorn logs the whole traceback)."""
    from devops_agent.server.main import _NoTraceback

    text = (
        'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
        "sqlalchemy.exc.DatabaseError: (sqlite3.DatabaseError) file is not a database\n"
        "[SQL: PRAGMA journal_mode=WAL]\n(Background on this error at: https://sqlalche.me/e/21/x)"
    )
    record = logging.LogRecord("uvicorn.error", logging.ERROR, "", 0, text, None, None)
    assert _NoTraceback().filter(record)
    assert record.getMessage() == (
        "lifespan failed: sqlalchemy.exc.DatabaseError: (sqlite3.DatabaseError) file is not a database"
    )


def test_an_unreadable_audit_key_is_one_line(tmp_path: Path) -> None:
    server = Server(tmp_path)
    (server.data_dir / "audit-key").mkdir(parents=True)  # not a file: it cannot be read
    line = refused(server.run_to_exit())
    assert "audit key" in line and "audit-key" in line
    empty = Server(tmp_path / "empty")
    empty.data_dir.mkdir(parents=True)
    (empty.data_dir / "audit-key").write_text("")
    assert "is empty" in refused(empty.run_to_exit())


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    sock, port = _busy_port()
    with sock:
        line = refused(Server(tmp_path, env={"API_PORT": str(port)}).run_to_exit())
    assert f"127.0.0.1:{port}" in line and "API_PORT" in line


def test_empty_openai_api_key_counts_as_unset(tmp_path: Path) -> None:
    server = Server(tmp_path, env={"REASONER": "auto"})
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / ".env").write_text("OPENAI_API_KEY=\n")  # set, but to nothing
    server.start()
    try:
        assert server.get("/status").json()["reasoner"] == "rules"
    finally:
        server.stop()


def test_no_alembic_plugin_announcements_at_info(tmp_path: Path) -> None:
    server = Server(tmp_path, env={"LOG_LEVEL": "INFO"}).start()
    server.stop()
    logs = server.logs()
    assert "Running upgrade" in logs  # migrations are still logged at INFO
    assert "setup plugin" not in logs and "alembic.runtime.plugins" not in logs


def test_postgres_needs_audit_key(tmp_path: Path, pg_url: str) -> None:
    line = refused(Server(tmp_path / "a", env={"DATABASE_URL": pg_url}).run_to_exit())
    assert "AUDIT_KEY" in line and "PostgreSQL" in line and "DATA_DIR/audit-key" in line
    verify = cli(tmp_path / "b", "audit", "verify", env={"DATABASE_URL": pg_url})
    assert "AUDIT_KEY" in refused(verify)
    # With it, the server starts: nothing was written meanwhile.
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
    server = Server(tmp_path / "c", env={"DATABASE_URL": pg_url, "AUDIT_KEY": PG_AUDIT_KEY})
    server.start()
    server.stop()
