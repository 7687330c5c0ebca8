"""One writer per run in this process: two writers on one LangGraph thread fork its history."""

from __future__ import annotations

import asyncio


class RunLock:
    """A per-run asyncio lock, forgotten when nobody holds or waits for it."""

    def __init__(self, locks: dict[str, tuple[asyncio.Lock, int]], run_id: str):
        self.locks = locks
        self.run_id = run_id

    async def __aenter__(self) -> None:
        lock, users = self.locks.get(self.run_id, (asyncio.Lock(), 0))
        self.locks[self.run_id] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._forget()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.locks[self.run_id][0].release()
        self._forget()

    def _forget(self) -> None:
        lock, users = self.locks[self.run_id]
        if users <= 1:
            self.locks.pop(self.run_id, None)
        else:
            self.locks[self.run_id] = (lock, users - 1)
