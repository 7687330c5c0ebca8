"""Alembic's entry point: migrate the connection `upgrade()` passed in, or DATABASE_URL's."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

connection = context.config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(connection=conn, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # the alembic command line: DATABASE_URL (a SQLAlchemy sync URL) names the database
    url = context.config.get_main_option("sqlalchemy.url") or os.environ["DATABASE_URL"]
    url = url.replace("sqlite+aiosqlite", "sqlite").replace(
        "postgresql://", "postgresql+psycopg://"
    )
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
