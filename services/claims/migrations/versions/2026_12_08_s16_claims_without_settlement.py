"""claims without a settlement (issue #16): second aid per member and period, graded sums

A claim that names no settlement (second aid for a member's period, seed 000; a graded accident sum, seed 002)
carries setl_id ''. The one-live-claim-per-settlement-and-plan index leaves those out.

Revision ID: s16_1
Revises: m13_1
Create Date: 2026-12-08 00:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 's16_1'
down_revision: str | None = 'm13_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('uq_claims_live_setl_id_plan', table_name='claims')
    op.create_index('uq_claims_live_setl_id_plan', 'claims', ['setl_id', 'plan'], unique=True,
                    postgresql_where=sa.text("status <> 'rejected' AND setl_id <> ''"))


def downgrade() -> None:
    op.drop_index('uq_claims_live_setl_id_plan', table_name='claims')
    op.create_index('uq_claims_live_setl_id_plan', 'claims', ['setl_id', 'plan'], unique=True,
                    postgresql_where=sa.text("status <> 'rejected'"))
