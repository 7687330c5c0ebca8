"""One process per SQLite store: the commands that drive runs hold an exclusive lock on it.

SQLite is one process by design (a process that starts takes over every run it finds). A
second `serve` or `run-alert` on the same DATA_DIR would become a second writer of the same
runs before it even knew its port was taken, so it refuses to start instead, naming the holder.
The lock is `flock` on a file beside the database: the kernel drops it when the holder dies,
so a crash never leaves a stale lock. Commands that only read or add records (`audit verify`)
do not take it. PostgreSQL runs several replicas on purpose and takes no lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from devops_agent.dburl import DatabaseUrl

_held: list[IO[str]] = []  # open for the life of the process: closing it would release the lock


class StoreLocked(Exception):
    """Another process holds the store; the message is one line for the operator."""


def lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite DATABASE_URL (None: not a SQLite file)."""
    url = DatabaseUrl(database_url)
    return Path(url.sqlite_path + ".lock") if url.kind == "sqlite" else None


def hold_store(database_url: str) -> Path | None:
    """Take the store's lock for the rest of this process; StoreLocked when another has it."""
    path = lock_path(database_url)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StoreLocked(
            f"another devops-agent process (pid {holder}) drives the runs of this store "
            f"({path.with_suffix('')}); stop it first, or give this one its own DATA_DIR"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held.append(handle)
    return path
