"""The schema as `create_all` made it before migrations: ledger, incidents, patterns, controls,
audit log, runs, alerts, approval decisions. Only missing tables are created, so a database made
by an earlier version (by `create_all`) is taken over as it is.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

OPEN = "status IN ('queued', 'running', 'awaiting_approval')"


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("action_ledger"):
        op.create_table(
            "action_ledger",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("run_id", sa.String(length=64), nullable=False),
            sa.Column("attempt", sa.Integer(), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("operation", sa.String(length=64), nullable=False),
            sa.Column("target", sa.String(length=255), nullable=False),
            sa.Column("params", sa.JSON(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("output", sa.Text(), nullable=False),
            sa.Column("started_at", sa.String(length=40), nullable=False),
            sa.Column("finished_at", sa.String(length=40), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("run_id", "attempt", "step", name="uq_ledger_step"),
        )
        op.create_index("ix_action_ledger_run_id", "action_ledger", ["run_id"])
    if _missing("alerts"):
        op.create_table(
            "alerts",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("run_id", sa.String(length=64), nullable=True),
            sa.Column("service", sa.String(length=255), nullable=False),
            sa.Column("fingerprint", sa.String(length=128), nullable=False),
            sa.Column("starts_at", sa.String(length=64), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("alertname", sa.String(length=255), nullable=False),
            sa.Column("labels", sa.JSON(), nullable=False),
            sa.Column("annotations", sa.JSON(), nullable=False),
            sa.Column("received_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("fingerprint", "starts_at", "status", name="uq_alert_event"),
        )
        op.create_index("ix_alerts_run_id", "alerts", ["run_id"])
    if _missing("approval_decisions"):
        op.create_table(
            "approval_decisions",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("run_id", sa.String(length=64), nullable=False),
            sa.Column("decision", sa.String(length=16), nullable=False),
            sa.Column("approver", sa.String(length=200), nullable=False),
            sa.Column("comment", sa.Text(), nullable=False),
            sa.Column("at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_approval_decisions_run_id", "approval_decisions", ["run_id"])
    if _missing("audit_log"):
        op.create_table(
            "audit_log",
            sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("at", sa.String(length=40), nullable=False),
            sa.Column("run_id", sa.String(length=64), nullable=False),
            sa.Column("kind", sa.String(length=32), nullable=False),
            sa.Column("actor", sa.String(length=200), nullable=False),
            sa.Column("detail", sa.JSON(), nullable=False),
            sa.Column("prev_hash", sa.String(length=64), nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("seq"),
        )
        op.create_index("ix_audit_log_kind", "audit_log", ["kind"])
        op.create_index("ix_audit_log_run_id", "audit_log", ["run_id"])
    if _missing("controls"):
        op.create_table(
            "controls",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.Column("updated_at", sa.String(length=40), nullable=False),
            sa.Column("updated_by", sa.String(length=200), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )
    if _missing("incidents"):
        op.create_table(
            "incidents",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("run_id", sa.String(length=64), nullable=False),
            sa.Column("service", sa.String(length=255), nullable=False),
            sa.Column("category", sa.String(length=32), nullable=False),
            sa.Column("root_cause", sa.Text(), nullable=False),
            sa.Column("confidence", sa.Float(), nullable=False),
            sa.Column("outcome", sa.String(length=16), nullable=False),
            sa.Column("evidence", sa.JSON(), nullable=False),
            sa.Column("actions", sa.JSON(), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("run_id"),
        )
        op.create_index("ix_incidents_service", "incidents", ["service"])
    if _missing("patterns"):
        op.create_table(
            "patterns",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("service", sa.String(length=255), nullable=False),
            sa.Column("category", sa.String(length=32), nullable=False),
            sa.Column("operation", sa.String(length=64), nullable=False),
            sa.Column("successes", sa.Integer(), nullable=False),
            sa.Column("failures", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("service", "category", "operation", name="uq_pattern"),
        )
    if _missing("runs"):
        op.create_table(
            "runs",
            sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("run_id", sa.String(length=64), nullable=False),
            sa.Column("incident_id", sa.String(length=64), nullable=False),
            sa.Column("service", sa.String(length=255), nullable=False),
            sa.Column("status", sa.String(length=24), nullable=False),
            sa.Column("outcome", sa.String(length=16), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("created_at", sa.String(length=40), nullable=False),
            sa.Column("updated_at", sa.String(length=40), nullable=False),
            sa.Column("awaiting_since", sa.String(length=40), nullable=True),
            sa.Column("pending_decision", sa.JSON(), nullable=True),
            sa.PrimaryKeyConstraint("seq"),
            sa.UniqueConstraint("run_id"),
        )
        op.create_index("ix_runs_service", "runs", ["service"])
        op.create_index("ix_runs_status", "runs", ["status"])
        op.create_index(
            "uq_runs_open_service",
            "runs",
            ["service"],
            unique=True,
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )


def downgrade() -> None:
    for name in (
        "runs",
        "patterns",
        "incidents",
        "controls",
        "audit_log",
        "approval_decisions",
        "alerts",
        "action_ledger",
    ):
        op.drop_table(name)
