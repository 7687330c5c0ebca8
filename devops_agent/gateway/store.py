"""The gateway's idempotency store: one SQLite file, one row per mutating intent's key.

A row is written `started` before the engine is asked and `finished`, with the result, after;
both are committed before the gateway goes on. A key seen again gets the first result (never a
second action); a key whose row is still `started` began under a gateway process that died
before it recorded the end: the engine must be asked what happened (reconcile).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    key TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    target TEXT NOT NULL,
    digest TEXT NOT NULL,
    intent TEXT NOT NULL,
    context TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
)
"""


def digest(operation: str, params: dict[str, Any]) -> str:
    """What a key stands for: a repeated key must mean the same operation and parameters."""
    text = json.dumps({"operation": operation, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Recorded:
    key: str
    digest: str
    status: str  # started | finished
    result: dict[str, Any] | None


class IntentStore:
    """Durable dedupe by idempotency key (stdlib sqlite3 in worker threads, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)
        self._lock = threading.Lock()

    def _get(self, key: str) -> Recorded | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key, digest, status, result FROM intents WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return Recorded(row[0], row[1], row[2], json.loads(row[3]) if row[3] else None)

    def _begin(self, key: str, operation: str, target: str, dig: str, text: str, ctx: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO intents (key, operation, target, digest, intent, context, status,"
                " started_at) VALUES (?, ?, ?, ?, ?, ?, 'started', ?)",
                (key, operation, target, dig, text, ctx, datetime.now(UTC).isoformat()),
            )

    def _finish(self, key: str, result: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE intents SET status = 'finished', result = ?, finished_at = ? WHERE key = ?",
                (json.dumps(result), datetime.now(UTC).isoformat(), key),
            )

    async def get(self, key: str) -> Recorded | None:
        return await asyncio.to_thread(self._get, key)

    async def begin(
        self,
        key: str,
        operation: str,
        target: str,
        dig: str,
        intent: str,
        context: dict[str, Any],
    ) -> None:
        ctx = json.dumps(context, default=str)
        await asyncio.to_thread(self._begin, key, operation, target, dig, intent, ctx)

    async def finish(self, key: str, result: dict[str, Any]) -> None:
        await asyncio.to_thread(self._finish, key, result)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM intents").fetchone()[0])

    def close(self) -> None:
        self._db.close()
