"""history_coverages: who was covered in a period run before this system (enrollment's history import)

Revision ID: s16_2
Revises: s16_1
Create Date: 2026-12-08 00:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 's16_2'
down_revision: str | None = 's16_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'history_coverages',
        sa.Column('period', sa.String(length=50), nullable=False),
        sa.Column('certno', sa.String(length=18), nullable=False),
        sa.PrimaryKeyConstraint('period', 'certno', name=op.f('pk_history_coverages')),
    )
    op.create_index(op.f('ix_history_coverages_certno'), 'history_coverages', ['certno'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_history_coverages_certno'), table_name='history_coverages')
    op.drop_table('history_coverages')
