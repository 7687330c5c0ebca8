"""Migrations at start-up: replicas starting together on a database that an earlier version made
with `create_all` (no migration history) bring it to head once, and keep its rows."""

from __future__ import annotations

from collections.abc import Callable

from devops_agent.migrations import HERE, upgrade_url
from tests.replicas.conftest import Database
from tests.server.conftest import Server

LEGACY_RUN = (
    "INSERT INTO runs (run_id, incident_id, service, status, outcome, created_at, updated_at) "
    "VALUES ('legacy-run', 'inc-legacy', 'old-service', 'completed', 'escalated', "
    "'2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00')"
)


def heads() -> set[str]:
    return {p.name.split("_", 1)[0] for p in (HERE / "versions").glob("[0-9]*_*.py")}


def test_replicas_starting_together_migrate_a_pre_migration_database_once(
    replicas: Callable[..., list[Server]], db: Database, pg_url: str
) -> None:
    upgrade_url(pg_url.replace("postgresql://", "postgresql+psycopg://"), "0001")
    db.execute("DROP TABLE alembic_version")  # what `create_all` of earlier versions left
    db.execute(LEGACY_RUN)
    servers = replicas(3, INFRA_BACKEND="fake")
    assert db.rows("SELECT version_num FROM alembic_version") == [(max(heads()),)]
    columns = {
        r[0]
        for r in db.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'"
        )
    }
    assert {"owner", "lease_until", "pruned_at"} <= columns
    for server in servers:
        run = server.run("legacy-run")
        assert (run["status"], run["outcome"], run["service"]) == (
            "completed",
            "escalated",
            "old-service",
        )
