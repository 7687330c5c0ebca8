"""Intake's writes as driver SQL (memory/intake.py): prepared once per dialect, run with
`Connection.exec_driver_sql` in intake's transaction. SQLAlchemy's per-row parameter handling of
a compiled insert was most of intake's own CPU under load; the driver SQL skips it, and errors
still come wrapped as SQLAlchemy's (an IntegrityError is retried, the webhook answers 503).
The JSON columns go through the dialect's own bind processor, as a Core insert does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Dialect

# Every column with a Python-side default is set too: the driver applies none.
NEW_RUN = (
    "INSERT INTO runs (run_id, incident_id, service, status, created_at, updated_at,"
    " lease_generation, truncated_alerts) VALUES (%(run_id)s, %(incident_id)s, %(service)s,"
    " %(status)s, %(created_at)s, %(updated_at)s, 0, 0)"
)
NEW_ALERT = (
    "INSERT INTO alerts (run_id, service, fingerprint, starts_at, status, alertname, labels,"
    " annotations, received_at) VALUES (%(run_id)s, %(service)s, %(fingerprint)s,"
    " %(starts_at)s, %(status)s, %(alertname)s, %(labels)s, %(annotations)s, %(received_at)s)"
)
TOUCH_RUN = "UPDATE runs SET updated_at = %(stamp)s WHERE run_id = %(rid)s"
# The most alerts Alertmanager left out of one notification of the run (truncatedAlerts).
TRUNCATED = (
    "UPDATE runs SET truncated_alerts = %(n)s WHERE run_id = %(rid)s AND truncated_alerts < %(n)s"
)
JSON_COLUMNS = ("labels", "annotations")
_MARK = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Statement:
    """One write in the dialect's paramstyle, and how to shape its rows."""

    sql: str
    order: tuple[str, ...] | None  # qmark (SQLite): the names in order (rows are tuples)
    json: Any  # the dialect's bind processor of the JSON columns, when they are set

    def run(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        """executemany on `conn` (a SQLAlchemy Connection) in its transaction."""
        process = self.json
        if process is not None:
            rows = [{**r, **{c: process(r[c]) for c in JSON_COLUMNS}} for r in rows]
        order = self.order
        if order is not None:
            conn.exec_driver_sql(self.sql, [tuple(r[n] for n in order) for r in rows])
        else:
            conn.exec_driver_sql(self.sql, rows)


@dataclass(frozen=True)
class Writes:
    new_run: Statement
    new_alert: Statement
    touch_run: Statement
    truncated: Statement

    @classmethod
    def of(cls, dialect: Dialect) -> Writes | None:
        """None for a paramstyle other than qmark and pyformat: the Core statements then."""
        if dialect.paramstyle not in ("qmark", "pyformat"):
            return None
        json = JSON().dialect_impl(dialect).bind_processor(dialect)

        def prepared(sql: str) -> Statement:
            processor = json if "%(labels)s" in sql else None
            if dialect.paramstyle == "pyformat":
                return Statement(sql, None, processor)
            return Statement(_MARK.sub("?", sql), tuple(_MARK.findall(sql)), processor)

        return cls(*(prepared(sql) for sql in (NEW_RUN, NEW_ALERT, TOUCH_RUN, TRUNCATED)))


_WRITES: dict[str, Writes | None] = {}  # dialect+driver -> its writes


def writes(dialect: Dialect) -> Writes | None:
    """The writes for this dialect (None: write with the Core statements)."""
    key = f"{dialect.name}+{dialect.driver}"
    if key not in _WRITES:
        _WRITES[key] = Writes.of(dialect)
    return _WRITES[key]
