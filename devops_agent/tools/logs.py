"""Picking the lines that matter out of logs (shared by backends and the LLM tool wrapper)."""

from __future__ import annotations

import re

from devops_agent.redact import redact_lines

# Bounded, linear patterns only: no nested quantifiers on user text.
ERROR_PATTERN = re.compile(
    r"error|exception|fatal|panic|fail|refused|killed|no space left|out of memory|oom|"
    r"cannot|can't|denied|timed? ?out|unreachable|traceback|missing|invalid|warn",
    re.IGNORECASE,
)
MAX_LINE = 500


def split_lines(text: str, limit: int) -> list[str]:
    """The last `limit` non-empty lines, secrets masked (a PEM block whole, across its lines,
    before error lines are picked out of them), each cut to MAX_LINE characters."""
    lines = redact_lines([line for line in text.splitlines() if line.strip()][-limit:])
    return [line[:MAX_LINE] for line in lines]


def error_lines(lines: list[str], limit: int = 50) -> list[str]:
    """The last `limit` lines that look like errors or warnings."""
    return [line for line in lines if ERROR_PATTERN.search(line)][-limit:]
