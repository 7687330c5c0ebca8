"""Several replicas: who executes a run (`owner`) and until when (`lease_until`), and when
retention deleted its checkpoints (`pruned_at`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("owner", sa.String(length=128), nullable=True))
    op.add_column("runs", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("runs", sa.Column("pruned_at", sa.String(length=40), nullable=True))
    # The retention sweep looks for finished runs not yet pruned, oldest first.
    op.create_index("ix_runs_finished_unpruned", "runs", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_finished_unpruned", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pruned_at")
        batch.drop_column("lease_until")
        batch.drop_column("owner")
