"""deliveries found by the provider's reference: an index for delivery receipts (issue #15)

Revision ID: p15_1
Revises: w13_1
Create Date: 2026-12-08 03:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p15_1'
down_revision: str | None = 'w13_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_deliveries_provider_ref', 'deliveries', ['provider_ref'], unique=False,
                    postgresql_where=sa.text('provider_ref IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_deliveries_provider_ref', table_name='deliveries',
                  postgresql_where=sa.text('provider_ref IS NOT NULL'))
