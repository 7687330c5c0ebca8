"""Several real `devops-agent serve` processes on one fresh PostgreSQL database.

Each test gets its own database, created here and dropped afterwards; the replicas are the same
subprocesses as in tests/server (tests.server.conftest.Server), started together so that their
migrations race as they would in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import PG_AUDIT_KEY
from tests.server.conftest import DEADLINE, Server


class Database:
    """Plain SQL on the test database: what the replicas stored, counted by the test itself."""

    def __init__(self, url: str):
        self.url = url

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    def value(self, sql: str, *params: Any) -> Any:
        return self.rows(sql, *params)[0][0]

    def execute(self, sql: str, *params: Any) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql, params)

    def wait(self, sql: str, until: Callable[[Any], bool], what: str, *params: Any) -> Any:
        """Poll `sql` (one value) until `until` holds; generous deadline, no timing assertions."""
        deadline = time.monotonic() + DEADLINE
        value = self.value(sql, *params)
        while not until(value):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still {value!r}")
            time.sleep(0.2)
            value = self.value(sql, *params)
        return value


@pytest.fixture
def db(pg_url: str) -> Database:
    return Database(pg_url)


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[Callable[..., list[Server]]]:
    """`replicas(n, **env)`: n servers on the test database, started at the same time."""
    made: list[Server] = []

    def make(n: int, **env: str) -> list[Server]:
        settings = {"DATABASE_URL": pg_url, "AUDIT_KEY": PG_AUDIT_KEY, **env}
        servers = [Server(tmp_path / f"replica{len(made) + i}", env=settings) for i in range(n)]
        made.extend(servers)
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda s: s.start(), servers))
        return servers

    yield make
    for srv in made:
        srv.stop()


def holder(servers: list[Server], owner: str | None) -> Server | None:
    """The replica whose process id is in a run's `owner` (host:pid:nonce)."""
    if not owner:
        return None
    pid = int(owner.split(":")[1])
    return next((s for s in servers if s.proc is not None and s.proc.pid == pid), None)
