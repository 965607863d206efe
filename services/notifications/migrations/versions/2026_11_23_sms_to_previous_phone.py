"""notifications.to_phone: a change of contact details is told at the previous phone (issue #9)

Revision ID: h9b_3
Revises: 0002
Create Date: 2026-11-23 18:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'h9b_3'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('notifications', sa.Column('to_phone', sa.String(length=20), nullable=True))


def downgrade() -> None:
    op.drop_column('notifications', 'to_phone')
