"""short_error: what a failed run keeps of its exception (no SQL text, no parameters)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from devops_agent.errors import MAX_CHARS, short_error


def test_a_database_error_loses_its_statement_and_parameters(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/e.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES ('the-secret-value')"))
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:k)"), {"k": "the-secret-value"})
    engine.dispose()
    assert "[SQL:" in str(info.value)  # what the old message kept
    message = short_error(info.value)
    assert message == "IntegrityError: UNIQUE constraint failed: t.k"


def test_any_error_is_one_short_line() -> None:
    message = short_error(RuntimeError("first line\nsecond line " + "x" * 1000))
    assert message == "RuntimeError: first line"
    long = short_error(ValueError("y" * 1000))
    assert len(long) == MAX_CHARS and long.endswith("...")
    assert short_error(KeyError()) == "KeyError"
