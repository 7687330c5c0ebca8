"""What `devops-agent serve` checks before it starts serving, so that a start-up error is one
line and exit code 2 (as a wrong setting is), never a traceback from deep inside the lifespan.

Each check does what the lifespan would do a moment later (read the policy, read or create the
audit key, reach the database, prepare DATA_DIR), only earlier and with a message for people.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from pathlib import Path

from devops_agent.config import Settings, SettingsError
from devops_agent.dburl import DatabaseUrl
from devops_agent.errors import one_line, short_error
from devops_agent.memory.audit import load_or_create_key
from devops_agent.memory.preflight import database_problem
from devops_agent.policy import load_policy
from devops_agent.workflows import load_catalog


def _sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    url = DatabaseUrl(database_url)
    if url.kind != "sqlite" or ":///" not in database_url:
        return None
    path = url.sqlite_path.split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _writable_dir(path: Path, what: str) -> str | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot start: {what} {path} cannot be created: {exc.strerror or exc}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"cannot start: {what} {path} is not writable"
    return None


def _sqlite_problem(path: Path) -> str | None:
    """Whether an existing SQLite file can be read as a database (read-only, changes nothing)."""
    if not path.is_file():
        return f"cannot start: the DATABASE_URL file {path} is not a file"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        return f"cannot start: the DATABASE_URL file {path} is not a usable SQLite database: {exc}"
    return None


def _port_problem(host: str, port: int) -> str | None:
    """Whether API_HOST:API_PORT can be listened on (as uvicorn will, with SO_REUSEADDR)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return f"cannot start: cannot listen on {host}:{port} (API_HOST, API_PORT): {reason}"
    return None


def startup_problem(settings: Settings) -> str | None:
    """One line saying why the service cannot start with these settings, or None."""
    url = settings.resolved_database_url
    problem = _port_problem(settings.api_host, settings.api_port)
    if problem:
        return problem
    problem = _writable_dir(Path(settings.data_dir), "DATA_DIR")
    if problem:
        return problem
    sqlite_file = _sqlite_path(url)
    if sqlite_file is not None:
        problem = _writable_dir(sqlite_file.parent, "the directory of the DATABASE_URL file")
        if problem:
            return problem
        if sqlite_file.exists():
            problem = _sqlite_problem(sqlite_file)
            if problem:
                return problem
    problem = database_problem(url)
    if problem:
        return f"cannot start: {problem}"
    try:
        load_policy(settings.policy_file)
        load_catalog(settings.workflows_dir)
    except SettingsError as exc:  # a YAML error spans lines: fold it into one
        return one_line(str(exc))
    if settings.audit_key is None and not url.startswith("memory://"):
        try:
            load_or_create_key(None, Path(settings.data_dir))
        except (OSError, ValueError) as exc:
            where = Path(settings.data_dir) / "audit-key"
            return (
                f"cannot start: the audit key {where} cannot be read or created: {short_error(exc)}"
            )
    return None
