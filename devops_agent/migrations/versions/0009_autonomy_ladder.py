"""The autonomy ladder on the learned patterns: approved fixes that held in a row, promoted.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "patterns", sa.Column("approved_held", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "patterns", sa.Column("promoted", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("patterns", sa.Column("changed_at", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patterns") as batch:
        batch.drop_column("changed_at")
        batch.drop_column("promoted")
        batch.drop_column("approved_held")
