"""coverages.shares: the shares the member bought of each plan with a fee of its own (seed 002 "多买几份")

Revision ID: x16_1
Revises: c16_2
Create Date: 2026-12-08 01:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'x16_1'
down_revision: str | None = 'c16_2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('coverages', sa.Column('shares', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    op.drop_column('coverages', 'shares')
