"""What the agent learned about a service: for each (category, operation), how its fixes did.

`learn` files every finished incident under its first diagnosis (what the fault was when the
agent met it, not what it became: an unfixed crash is a crash the restart did not fix, not a
crash loop), with what it tried and whether that held through the settle window. `plan` reads
the tracks of the last LEARNING_DAYS: an operation whose latest try did not hold is not planned
again by itself, and root_cause reads when a fix last held (a crash soon after is a crash loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from devops_agent.memory.db import Incident
from devops_agent.state import HAPPENED

LEARNING_DAYS = 7


@dataclass
class Track:
    """How one operation did against one category of fault on one service, recently."""

    held: int = 0
    failed: int = 0
    last_held: bool | None = None  # how the latest try ended
    last_at: datetime | None = None
    last_held_at: datetime | None = None  # when a try of it last held

    @property
    def tried(self) -> int:
        return self.held + self.failed

    def cite(self, operation: str) -> str:
        return f"{operation} held {self.held} of {self.tried} times in {LEARNING_DAYS} days"


Learned = dict[tuple[str, str], Track]


def held_of(outcome: str, actions: list[dict[str, Any]]) -> bool | None:
    """Whether an incident's fix held: None when the agent did not act on it."""
    acted = [a for a in actions if a.get("status") in HAPPENED and a.get("rollback_of") is None]
    if not acted:
        return None
    return outcome == "resolved"


def learned(conn: Connection, service: str, now: datetime | None = None) -> Learned:
    """The tracks of a service's incidents of the last LEARNING_DAYS, oldest first."""
    now = now or datetime.now(UTC)
    since = (now - timedelta(days=LEARNING_DAYS)).isoformat()
    rows = conn.execute(
        select(Incident.category, Incident.outcome, Incident.actions, Incident.created_at)
        .where(Incident.service == service, Incident.created_at >= since)
        .order_by(Incident.id)
    )
    tracks: Learned = {}
    for category, outcome, actions, created_at in rows:
        held = held_of(outcome, actions or [])
        if held is None:
            continue
        at = datetime.fromisoformat(created_at)
        for operation in dict.fromkeys(
            a["operation"]
            for a in actions
            if a.get("status") in HAPPENED and a.get("rollback_of") is None
        ):
            track = tracks.setdefault((category, operation), Track())
            track.held += held
            track.failed += not held
            track.last_held, track.last_at = held, at
            if held:
                track.last_held_at = at
    return tracks
