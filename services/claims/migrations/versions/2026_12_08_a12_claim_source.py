"""claims record where they came from: an application (``application``) or the bureau's settlement record with
no application (``bureau``, a plan's auto_claim, issue #12)

Revision ID: a12_1
Revises: s16_2
Create Date: 2026-12-08 00:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a12_1'
down_revision: str | None = 's16_2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('claims', sa.Column('source', sa.String(length=20), server_default='application', nullable=False))


def downgrade() -> None:
    op.drop_column('claims', 'source')
