"""The autonomy ladder (AUTONOMY_LADDER, with SAFETY_MODE off): an operation that a person
approved AUTONOMY_PROMOTE_AFTER times in a row for the same (service, category), each time a fix
that held, and that never failed meanwhile, runs by itself for that pattern, even above
AUTO_APPROVE_MAX_RISK (the policy caps it: never above medium, never execute_command, always
inside the blast radius). A fix of it that did not hold, a rollback or a person's rejection
demotes it and starts the count again. Each promotion and demotion is an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, select, update

from devops_agent.memory.db import Pattern
from devops_agent.state import utcnow

Result = Literal["approved_held", "held", "failed", "rejected"]


@dataclass
class Rung:
    """How one run's outcome moves one pattern on the ladder."""

    operation: str
    result: Result


@dataclass
class Change:
    operation: str
    change: Literal["promoted", "demoted"]
    approved_held: int


def climb(
    conn: Connection,
    service: str,
    category: str,
    rungs: list[Rung],
    promote_after: int,
    enabled: bool,
) -> list[Change]:
    """Apply a finished run's rungs to its patterns (the rows exist: learn upserted them)."""
    changes: list[Change] = []
    for rung in rungs:
        where = (
            Pattern.service == service,
            Pattern.category == category,
            Pattern.operation == rung.operation,
        )
        row = conn.execute(select(Pattern.approved_held, Pattern.promoted).where(*where)).first()
        count, promoted = (int(row[0] or 0), bool(row[1])) if row else (0, False)
        if rung.result == "approved_held":
            count += 1
        elif rung.result in ("failed", "rejected"):
            count = 0
        now_promoted = promoted
        if rung.result in ("failed", "rejected"):
            now_promoted = False
        elif enabled and count >= promote_after:
            now_promoted = True
        values: dict[str, object] = {"approved_held": count, "promoted": now_promoted}
        if now_promoted != promoted:
            values["changed_at"] = utcnow()
            changes.append(Change(rung.operation, "promoted" if now_promoted else "demoted", count))
        if row is None:
            continue
        conn.execute(update(Pattern).where(*where).values(**values))
    return changes


def promoted(conn: Connection, service: str, category: str) -> set[str]:
    """The operations promoted for this (service, category)."""
    rows = conn.execute(
        select(Pattern.operation).where(
            Pattern.service == service, Pattern.category == category, Pattern.promoted.is_(True)
        )
    )
    return {str(r[0]) for r in rows}
