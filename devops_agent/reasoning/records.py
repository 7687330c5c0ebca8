"""One record per reasoner call, appended to `Investigation.calls` (the run's `reasoning`).

Keys: reasoner ("llm" | "rules"), step ("diagnose" | "plan"), latency_ms, model_ms (time spent
waiting on the model), input_tokens, output_tokens, model_calls, retries, tool_calls, tools,
fallback (True on the record of the reasoner that answered in place of a failed one), error
("kind: message" or None), rejected (reasons an answer was refused), confidence (model, final).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULTS: dict[str, Any] = {
    "latency_ms": 0.0,
    "model_ms": 0.0,
    "input_tokens": 0,
    "output_tokens": 0,
    "model_calls": 0,
    "retries": 0,
    "tool_calls": 0,
    "tools": [],
    "fallback": False,
    "error": None,
    "rejected": [],
}


@dataclass
class CallRecord:
    reasoner: str
    step: str
    latency_ms: float = 0.0
    model_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    retries: int = 0
    tool_calls: int = 0
    tools: list[str] = field(default_factory=list)
    fallback: bool = False
    error: str | None = None
    rejected: list[str] = field(default_factory=list)
    confidence: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["latency_ms"] = round(self.latency_ms, 3)
        out["model_ms"] = round(self.model_ms, 3)
        if self.confidence is None:
            del out["confidence"]
        return out


def complete(record: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Fill in the keys a record lacks (the rules reasoner writes only reasoner and step)."""
    for key, default in DEFAULTS.items():
        record.setdefault(key, list(default) if isinstance(default, list) else default)
    record.update(values)
    return record
