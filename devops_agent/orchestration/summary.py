"""What a finished run keeps on its row (`runs.summary`), so the API and the console show it the
same before and after retention deleted its checkpoints."""

from __future__ import annotations

from typing import Any

# What a finished run keeps on its row (`runs.summary`): every state key the views read, so a
# run looks the same before and after retention deleted its checkpoints.
SUMMARY_KEYS = (
    "diagnosis",
    "plan",
    "approval",
    "actions",
    "validation",
    "attempts",
    "outcome",
    "escalation",
    "escalation_reason",
    "handled_by",
)


def summary_of(state: dict[str, Any]) -> dict[str, Any]:
    """The part of a finished run's state that its views show, evidence as source and summary."""
    kept = {key: state.get(key) for key in SUMMARY_KEYS if state.get(key) is not None}
    kept["evidence"] = [
        {"source": e.get("source"), "summary": e.get("summary")}
        for e in state.get("evidence") or []
        if isinstance(e, dict)
    ]
    return kept
