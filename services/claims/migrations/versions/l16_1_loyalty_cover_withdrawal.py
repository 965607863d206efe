"""loyalty_covers.version / withdrawn: a loyalty cover withdrawn by enrollment (member.loyalty_revoked) leaves the
coverage unless a claim on it exists

Revision ID: l16_1
Revises: x16_1
Create Date: 2026-12-08 01:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'l16_1'
down_revision: str | None = 'x16_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('loyalty_covers', sa.Column('version', sa.Integer(), server_default='0', nullable=False))
    op.add_column('loyalty_covers', sa.Column('withdrawn', sa.Boolean(), server_default=sa.text('false'),
                                              nullable=False))


def downgrade() -> None:
    op.drop_column('loyalty_covers', 'withdrawn')
    op.drop_column('loyalty_covers', 'version')
