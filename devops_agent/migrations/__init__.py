"""Alembic migrations of the service's own tables (not LangGraph's: its saver owns those).

They run at every start, on SQLite files and on PostgreSQL alike, through `upgrade(connection)`:
on PostgreSQL under a transaction-scoped advisory lock, so replicas that start together take
turns and the later ones find the schema at head and do nothing. DDL on PostgreSQL is
transactional, so a replica killed half-way leaves the previous version, never half of one.
Databases made by the `create_all` of earlier versions are brought in by the first revision,
which creates only the tables that are missing.

Add a revision with `alembic -c devops_agent/migrations/alembic.ini revision -m "..."`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text

HERE = Path(__file__).resolve().parent
SCHEMA_LOCK = 72_410_002  # pg_advisory_xact_lock key: replicas starting together take turns
# Alembic announces each of its plugins at INFO on every start; the upgrades it runs stay logged.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at this package (no alembic.ini needed at run time)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade the database of `connection` (inside its transaction) to `revision`."""
    if connection.dialect.name == "postgresql":
        # A migration may take longer than the statements of a run are allowed to.
        connection.execute(text("SET LOCAL statement_timeout = 0"))
        connection.execute(text("SET LOCAL lock_timeout = 0"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
    command.upgrade(config(connection), revision)


def upgrade_url(url: str, revision: str = "head") -> None:
    """Upgrade the database at a synchronous SQLAlchemy URL (in the caller's thread)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            upgrade(conn, revision)
    finally:
        engine.dispose()


def current(connection: Connection) -> str | None:
    """The revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
