"""loyalty_covers: plans granted by 第十五条 (member.loyalty_granted), kept on the member's coverage

Revision ID: c16_2
Revises: c16_1
Create Date: 2026-12-08 00:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'c16_2'
down_revision: str | None = 'c16_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'loyalty_covers',
        sa.Column('member_id', sa.String(length=40), nullable=False),
        sa.Column('period', sa.String(length=50), nullable=False),
        sa.Column('plan', sa.String(length=50), nullable=False),
        sa.Column('periods_without_aid', postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.PrimaryKeyConstraint('member_id', 'period', 'plan', name=op.f('pk_loyalty_covers')),
    )


def downgrade() -> None:
    op.drop_table('loyalty_covers')
