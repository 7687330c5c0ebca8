"""Open the checkpointer for a DATABASE_URL, inside a running event loop.

`sqlite...` gives an AsyncSqliteSaver on the same file as the service's tables (WAL mode, so
both can write); `postgresql://` gives an AsyncPostgresSaver on a psycopg pool (autocommit, dict
rows, no prepared statements, as its README asks), set up once under an advisory lock so that
replicas starting together do not race; `memory://` gives an InMemorySaver.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from devops_agent.dburl import DatabaseUrl


@asynccontextmanager
async def open_checkpointer(database_url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Yield a ready checkpointer; closes its connection on exit."""
    url = DatabaseUrl(database_url)
    if url.kind == "memory":
        yield InMemorySaver()
        return
    if url.kind == "sqlite":
        path = url.sqlite_path
        await asyncio.to_thread(Path(path).parent.mkdir, parents=True, exist_ok=True)
        async with aiosqlite.connect(path, timeout=30) as conn:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA busy_timeout=30000")
            await conn.execute("PRAGMA synchronous=NORMAL")
            sqlite_saver = AsyncSqliteSaver(conn)
            await sqlite_saver.setup()
            yield sqlite_saver
        return
    async with open_postgres_saver(url.conninfo) as pg_saver:
        yield pg_saver


SETUP_LOCK = 72_410_001  # pg_advisory_lock key for schema set-up


async def _advisory_lock(conn: AsyncConnection[DictRow], key: int) -> None:
    """Take a session advisory lock by polling `pg_try_advisory_lock`, never by waiting in a
    statement: `setup()` builds its indexes CONCURRENTLY, which waits for every transaction in
    progress, so a replica blocked inside `pg_advisory_lock` would deadlock with the holder."""
    while True:
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (key,))).fetchone()
        if row and row["ok"]:
            return
        await asyncio.sleep(0.1)


@asynccontextmanager
async def open_postgres_saver(
    conninfo: str, max_size: int = 10
) -> AsyncIterator[AsyncPostgresSaver]:
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "connect_timeout": 5,
        },
        # A connection the server closed (restart, failover) is replaced, not handed to a run.
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=True, timeout=10)
    try:
        saver = AsyncPostgresSaver(pool)
        async with pool.connection() as conn:
            await _advisory_lock(conn, SETUP_LOCK)
            try:
                await saver.setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
        yield saver
    finally:
        await pool.close()
