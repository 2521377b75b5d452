"""Leases on batch items: one delivery of a chunk scores its images at a time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns with no default: a plain ADD COLUMN on PostgreSQL and SQLite alike.
    op.add_column("batch_items", sa.Column("owner", sa.String(length=128), nullable=True))
    op.add_column(
        "batch_items", sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("batch_items") as batch_op:
        batch_op.drop_column("leased_until")
        batch_op.drop_column("owner")
