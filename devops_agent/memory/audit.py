"""The audit trail: an append-only table of decisions, each row chained to the previous one.

Each row's hash is HMAC-SHA256(key, previous hash + the row's canonical JSON). Editing a row,
deleting one in the middle, or reordering rows breaks the chain, and without the key nobody with
database access can rebuild it (an unkeyed chain can simply be recomputed after an edit). The
key is AUDIT_KEY, or one generated into DATA_DIR/audit-key (mode 0600). Rows are numbered
(`seq`, the primary key), so two writers racing for the same number cannot both succeed: the
loser retries on the new head. Truncating the newest rows is not detectable from the table
alone: export `head()` elsewhere if that matters.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from devops_agent.memory.db import AuditRow
from devops_agent.memory.store import Store
from devops_agent.state import utcnow

GENESIS = "0" * 64
VERIFY_CHUNK = 1000  # rows checked per trip to the store's thread


def load_or_create_key(configured: str | None, data_dir: Path) -> bytes:
    """AUDIT_KEY, or the key in DATA_DIR/audit-key, created (0600) on first use."""
    if configured:
        return configured.encode()
    path = data_dir / "audit-key"
    if path.exists():
        return path.read_text().strip().encode()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key.encode()


def _digest(
    key: bytes,
    prev_hash: str,
    seq: int,
    at: str,
    run_id: str,
    kind: str,
    actor: str,
    detail: dict[str, Any],
) -> str:
    body = json.dumps(
        {"seq": seq, "at": at, "run_id": run_id, "kind": kind, "actor": actor, "detail": detail},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hmac.new(key, (prev_hash + body).encode(), hashlib.sha256).hexdigest()


@dataclass
class Verification:
    ok: bool
    rows: int
    head: str
    problem: str = ""


class AuditLog:
    """The audit trail on the store's database (its queries run in the store's worker thread)."""

    def __init__(self, store: Store, key: bytes):
        self.store = store
        self.key = key
        self._head: tuple[int, str] | None = None  # (seq, hash) this process last wrote or read
        self._lock = asyncio.Lock()

    async def append(self, run_id: str, kind: str, actor: str, detail: dict[str, Any]) -> int:
        """Add one row at the head of the chain; returns its sequence number."""
        detail = json.loads(json.dumps(detail, default=str))  # what is stored is what is hashed
        await self.store.setup()
        async with self._lock:  # one writer per process; other processes are caught by the key
            for _ in range(20):
                seq = await self.store.call(self._try_append, run_id, kind, actor, detail)
                if seq is not None:
                    return seq
        raise RuntimeError("audit log: could not append after 20 tries")

    def _try_append(self, run_id: str, kind: str, actor: str, detail: dict[str, Any]) -> int | None:
        """Insert after the known head in a transaction of its own; None when another writer
        took that number first, after which the head is read again."""
        try:
            with self.store.engine.begin() as conn:
                return self.write(conn, run_id, kind, actor, detail)
        except IntegrityError:
            return None

    def writer(
        self, run_id: str, kind: str, actor: str, detail: dict[str, Any]
    ) -> Callable[[Connection], int]:
        """A row to write inside another transaction (an action's with the ledger's end); that
        transaction retries on IntegrityError, when another writer took the row's number."""
        detail = json.loads(json.dumps(detail, default=str))

        def write(conn: Connection) -> int:
            # The other transaction may still roll back: its head is read afresh, never
            # remembered, and the remembered one is forgotten (the next append reads it).
            self._head = None
            try:
                return self.write(conn, run_id, kind, actor, detail)
            finally:
                self._head = None

        return write

    def write(
        self, conn: Connection, run_id: str, kind: str, actor: str, detail: dict[str, Any]
    ) -> int:
        """Insert one row after the known head (read once, then remembered) in `conn`."""
        if self._head is None:
            last = conn.execute(
                select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
            ).first()
            self._head = (last.seq, last.hash) if last else (0, GENESIS)
        seq, prev, at = self._head[0] + 1, self._head[1], utcnow()
        digest = _digest(self.key, prev, seq, at, run_id, kind, actor[:200], detail)
        try:
            conn.execute(
                insert(AuditRow).values(
                    seq=seq,
                    at=at,
                    run_id=run_id,
                    kind=kind,
                    actor=actor[:200],
                    detail=detail,
                    prev_hash=prev,
                    hash=digest,
                )
            )
        except IntegrityError:
            self._head = None  # another writer took this number: read the new head
            raise
        self._head = (seq, digest)
        return seq

    async def rows(
        self, run_id: str | None = None, kind: str | None = None, limit: int = 1000, after: int = 0
    ) -> list[AuditRow]:
        await self.store.setup()
        query = select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(limit)
        if run_id:
            query = query.where(AuditRow.run_id == run_id)
        if kind:
            query = query.where(AuditRow.kind == kind)
        return await self.store.scalars(query)

    async def verify(self) -> Verification:
        """Walk the whole chain; the first row that does not fit is reported.

        A chunk of rows per trip to the store's thread, so the runs' own writes (which share
        that thread) wait for one chunk at most, not for the whole chain."""
        await self.store.setup()
        progress = Verification(True, 0, GENESIS)
        while True:
            progress, more = await self.store.call(self._verify_chunk, progress)
            if not progress.ok or not more:
                return progress

    def _verify_chunk(self, done: Verification) -> tuple[Verification, bool]:
        """Check the VERIFY_CHUNK rows after those in `done`; (the result so far, whether rows
        remain)."""
        prev, count = done.head, done.rows
        with self.store.sessions() as session:
            query = (
                select(AuditRow)
                .where(AuditRow.seq > count)
                .order_by(AuditRow.seq)
                .limit(VERIFY_CHUNK)
            )
            rows = list(session.scalars(query))
        for row in rows:
            expected_seq = count + 1
            if row.seq != expected_seq:
                return Verification(
                    False, count, prev, f"row {expected_seq} is missing (next is {row.seq})"
                ), False
            if row.prev_hash != prev:
                return Verification(
                    False, count, prev, f"row {row.seq} does not follow row {row.seq - 1}"
                ), False
            digest = _digest(
                self.key, prev, row.seq, row.at, row.run_id, row.kind, row.actor, row.detail
            )
            if not hmac.compare_digest(digest, row.hash):
                return Verification(
                    False, count, prev, f"row {row.seq} was changed after it was written"
                ), False
            prev, count = row.hash, count + 1
        return Verification(True, count, prev), len(rows) == VERIFY_CHUNK
