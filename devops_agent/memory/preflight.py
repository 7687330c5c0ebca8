"""Is the database there? Asked once before the service starts, so that an unreachable
PostgreSQL is one clear line and a non-zero exit, not a traceback from deep inside the start-up."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg

CONNECT_TIMEOUT = 5


def postgres_conninfo(database_url: str) -> str:
    """A libpq URL (drops a SQLAlchemy driver suffix such as +psycopg)."""
    scheme, rest = database_url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else database_url


def where(database_url: str) -> str:
    """host:port/database of a PostgreSQL URL, without user or password (for messages)."""
    parts = urlsplit(postgres_conninfo(database_url))
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def database_problem(database_url: str) -> str | None:
    """One line saying why the database cannot be reached, or None when it answers.

    Only PostgreSQL is checked: a SQLite file is created on first use.
    """
    if not database_url.startswith(("postgresql", "postgres://")):
        return None
    try:
        with psycopg.connect(
            postgres_conninfo(database_url), connect_timeout=CONNECT_TIMEOUT, autocommit=True
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return f"PostgreSQL at {where(database_url)} is unreachable (DATABASE_URL): {reason}"
    return None
