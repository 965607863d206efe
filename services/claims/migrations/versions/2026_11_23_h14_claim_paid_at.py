"""claim_paid_at: when payments announced a claim's own aid paid (ops dashboard read model)

Revision ID: h14_1
Revises: 0004
Create Date: 2026-11-23 18:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'h14_1'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'claim_paid_at',
        sa.Column('claim_id', sa.String(length=40), nullable=False),
        sa.Column('paid_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('claim_id', name=op.f('pk_claim_paid_at')),
    )


def downgrade() -> None:
    op.drop_table('claim_paid_at')
