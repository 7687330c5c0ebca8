"""Open the checkpointer for a DATABASE_URL, inside a running event loop.

`sqlite...` gives an AsyncSqliteSaver on the same file as the service's tables (WAL mode, so
both can write); `memory://` gives an InMemorySaver. PostgreSQL comes with the replicas issue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver


def sqlite_path(database_url: str) -> str:
    """The file path of a `sqlite[+aiosqlite]:///path` URL."""
    if ":///" not in database_url:
        raise ValueError(f"not a SQLite file URL: {database_url.split('://')[0]}://...")
    return database_url.split(":///", 1)[1]


@asynccontextmanager
async def open_checkpointer(database_url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Yield a ready checkpointer; closes its connection on exit."""
    if database_url.startswith("memory://"):
        yield InMemorySaver()
        return
    if database_url.startswith("sqlite"):
        path = sqlite_path(database_url)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(path, timeout=30) as conn:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA busy_timeout=30000")
            await conn.execute("PRAGMA synchronous=NORMAL")
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
            yield saver
        return
    raise ValueError(
        "DATABASE_URL: PostgreSQL checkpoints are not available yet; use sqlite+aiosqlite:///path.db"
    )
