"""Actions you can trust: the ledger keys each step on its target's identity (`target_key`),
keeps the snapshot taken before it (`snapshot`) and whether a step interrupted by a crash was
found done in reality (`reconciled`) and the reason code of a refusal (`reason`); runs carry their lease's fencing token
(`lease_generation`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "action_ledger",
        sa.Column("target_key", sa.String(length=600), nullable=False, server_default=""),
    )
    op.add_column("action_ledger", sa.Column("snapshot", sa.JSON(), nullable=True))
    op.add_column(
        "action_ledger",
        sa.Column("reconciled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("action_ledger", sa.Column("reason", sa.String(length=32), nullable=True))
    op.create_index("ix_ledger_target_key", "action_ledger", ["target_key", "started_at"])
    op.add_column(
        "runs", sa.Column("lease_generation", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lease_generation")
    op.drop_index("ix_ledger_target_key", table_name="action_ledger")
    with op.batch_alter_table("action_ledger") as batch:
        batch.drop_column("reason")
        batch.drop_column("reconciled")
        batch.drop_column("snapshot")
        batch.drop_column("target_key")
