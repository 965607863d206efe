"""rosters.payers and enrolments.shares: a unit's choice of payers and several shares per worker (seed 002)

Revision ID: r16_1
Revises: m13_2
Create Date: 2026-12-08 00:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'r16_1'
down_revision: str | None = 'm13_2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('rosters', sa.Column('payers', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('enrolments', sa.Column('shares', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    op.drop_column('enrolments', 'shares')
    op.drop_column('rosters', 'payers')
