"""Short, safe messages for exceptions that people read (a failed run's `error`, start-up lines).

A database error's text carries the statement and its parameters (SQLAlchemy appends
`[SQL: ...]` and `[parameters: ...]`; PostgreSQL adds DETAIL lines with the row's values):
none of that belongs in a stored record or a log line. What is kept is the exception's class and
the first line of the driver's own message, at most MAX_CHARS characters.
"""

from __future__ import annotations

MAX_CHARS = 300
_CUT_AT = ("[SQL:", "[parameters:", "(Background on this error")


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(text.split())


def short_error(exc: BaseException) -> str:
    """`ClassName: first line of the message`, without SQL text or its parameters."""
    cause = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's exception
    text = str(cause if isinstance(cause, BaseException) else exc)
    for marker in _CUT_AT:
        text = text.split(marker, 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    if len(message) > MAX_CHARS:
        message = message[: MAX_CHARS - 3] + "..."
    return message
