"""period history: the members of periods run before the system (issue #8)

Revision ID: h8b_1
Revises: 0006
Create Date: 2026-11-23 18:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'h8b_1'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('period_history',
    sa.Column('period', sa.String(length=50), nullable=False),
    sa.Column('certno', sa.String(length=18), nullable=False),
    sa.Column('unit', sa.String(length=50), nullable=False),
    sa.Column('member_type', sa.String(length=20), nullable=False),
    sa.Column('aid_received', sa.Boolean(), nullable=False),
    sa.Column('recorded_by', sa.String(length=100), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('period', 'certno', name=op.f('pk_period_history'))
    )


def downgrade() -> None:
    op.drop_table('period_history')
